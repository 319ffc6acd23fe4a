//! Judging the mode of a private key file, as OpenDKIM's
//! `RequireSafeKeys` does. (Key files are written by
//! [`crate::apply::keys`].)

/// The problem with a key file's permission bits, if any, in the spirit of
/// OpenDKIM's `RequireSafeKeys`: a private key must not be readable,
/// writable or otherwise accessible by others, nor writable by its group
/// (group read is fine: the milter may read it through its group).
pub fn check_key_file_mode(mode: u32) -> Option<&'static str> {
    let mode = mode & 0o7777;
    if mode & 0o002 != 0 {
        Some("writable by others")
    } else if mode & 0o004 != 0 {
        Some("readable by others")
    } else if mode & 0o001 != 0 {
        Some("accessible by others (o+x)")
    } else if mode & 0o020 != 0 {
        Some("writable by its group")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_modes() {
        assert_eq!(check_key_file_mode(0o600), None);
        assert_eq!(check_key_file_mode(0o640), None);
        assert_eq!(check_key_file_mode(0o400), None);
        assert_eq!(check_key_file_mode(0o100600), None); // with file-type bits
        assert_eq!(check_key_file_mode(0o644), Some("readable by others"));
        assert_eq!(check_key_file_mode(0o602), Some("writable by others"));
        assert_eq!(
            check_key_file_mode(0o601),
            Some("accessible by others (o+x)")
        );
        assert_eq!(check_key_file_mode(0o660), Some("writable by its group"));
    }
}
