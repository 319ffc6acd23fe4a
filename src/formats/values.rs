//! What a value from dkim.toml may hold to be written into each of the
//! files dkimctl renders, and the escaping a format offers.
//!
//! A path or name is written verbatim into systemd units, tmpfiles.d,
//! opendkim.conf and its tables, main.cf and master.cf, sendmail.mc and
//! dkimctl's own applied.conf. Each of these formats gives some characters
//! a meaning — a newline ends the setting and starts another, a space or a
//! comma splits a list, `#` starts a comment, `$` expands a parameter, `%`
//! a systemd specifier — so a value holding one would say something else
//! than was meant, or add settings of its own (a newline in `binary` would
//! add an `ExecStartPre=` running as root). Where a format can escape a
//! character the renderer escapes it ([`systemd_escape`]: `%` as `%%`);
//! every other special character is refused by validation
//! ([`crate::config::validate`]), at the value's place in dkim.toml.

use std::borrow::Cow;

/// A file format a value is written into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A systemd unit setting (systemd.syntax(7)): one line; words split
    /// on white space and quotes in command lines and path lists; `\`
    /// escapes; `$` expands variables in `ExecStart=`; `%` specifiers
    /// (escaped as `%%`).
    SystemdUnit,
    /// A tmpfiles.d(5) path field: fields split on white space, quotes and
    /// `\` escapes; `%` specifiers (escaped as `%%`).
    Tmpfiles,
    /// An opendkim.conf value (OpenDKIM 2.11 config.c): the line is cut at
    /// the first `#` or carriage return, and surrounding blanks dropped.
    OpenDkimConf,
    /// An element of a comma-separated opendkim.conf list (`MTA`,
    /// `SignHeaders`).
    OpenDkimList,
    /// A field of a KeyTable, SigningTable or host list line: `#` starts a
    /// comment, white space separates the key from the value.
    OpenDkimTable,
    /// A milter address in main.cf or a master.cf `-o` override
    /// (postconf(5), master(5)): lists split on white space and commas,
    /// `$` expands parameters, `{ }` group, `#` starts a comment line.
    Postfix,
    /// The `S=` equate of a sendmail.mc `INPUT_MAIL_FILTER`: m4 quotes
    /// `` ` `` and `'`, parentheses and `#` comments; equates split on
    /// commas, `T=` parts on semicolons.
    SendmailMc,
    /// dkimctl's own applied.conf and the comment heading every rendered
    /// file: one line, words split on white space and lists on commas.
    Applied,
}

impl Format {
    /// The file as the user knows it, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::SystemdUnit => "a systemd unit",
            Format::Tmpfiles => "tmpfiles.d",
            Format::OpenDkimConf | Format::OpenDkimList => "opendkim.conf",
            Format::OpenDkimTable => "OpenDKIM's KeyTable",
            Format::Postfix => "main.cf or master.cf",
            Format::SendmailMc => "sendmail.mc",
            Format::Applied => "dkimctl's applied.conf",
        }
    }

    /// The characters (besides control characters, which no format takes)
    /// that the format gives a meaning to and cannot escape.
    fn refused(self) -> &'static [char] {
        match self {
            Format::SystemdUnit => &[' ', '\t', '"', '\'', '\\', '$'],
            Format::Tmpfiles => &[' ', '\t', '"', '\'', '\\'],
            Format::OpenDkimConf => &['#'],
            Format::OpenDkimList => &['#', ',', ' ', '\t'],
            Format::OpenDkimTable => &['#', ' ', '\t'],
            Format::Postfix => &[' ', '\t', ',', '$', '{', '}', '#'],
            Format::SendmailMc => &['`', '\'', ',', ';', '(', ')', '#', ' ', '\t'],
            Format::Applied => &[' ', '\t', ','],
        }
    }
}

/// Why a value cannot be written into a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    /// The format.
    pub format: Format,
    /// The first character it cannot take.
    pub found: char,
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.found {
            '\n' => "a line break".to_string(),
            '\r' => "a carriage return".to_string(),
            ' ' => "a space".to_string(),
            '\t' => "a tab".to_string(),
            c if c.is_control() => format!("the control character U+{:04X}", c as u32),
            c => format!("`{c}`"),
        };
        write!(
            f,
            "it holds {what}, which {} cannot carry",
            self.format.name()
        )
    }
}

/// Checks that `value` can be written into `format` as it is (after the
/// format's own escaping).
pub fn check(value: &str, format: Format) -> Result<(), Unfit> {
    match value
        .chars()
        .find(|&c| c.is_control() || format.refused().contains(&c))
    {
        Some(found) => Err(Unfit { format, found }),
        None => Ok(()),
    }
}

/// Checks `value` against every format in `formats`; the first misfit.
pub fn check_all(value: &str, formats: &[Format]) -> Result<(), Unfit> {
    formats.iter().try_for_each(|&f| check(value, f))
}

/// A value for a systemd unit setting or a tmpfiles.d path: `%` doubled,
/// so that systemd reads the value itself instead of a specifier
/// (`%h`, `%n`, ...).
pub fn systemd_escape(value: &str) -> Cow<'_, str> {
    if value.contains('%') {
        Cow::Owned(value.replace('%', "%%"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_refuses_what_it_would_misread() {
        let cases: &[(&str, Format, Option<char>)] = &[
            ("/usr/bin/dkimctl", Format::SystemdUnit, None),
            (
                "/usr/bin/dkimctl\nExecStartPre=/bin/sh",
                Format::SystemdUnit,
                Some('\n'),
            ),
            ("/opt/my dir/dkimctl", Format::SystemdUnit, Some(' ')),
            ("/opt/$HOME/dkimctl", Format::SystemdUnit, Some('$')),
            ("/opt/100%/dkimctl", Format::SystemdUnit, None),
            ("/run/x y", Format::Tmpfiles, Some(' ')),
            ("/run/a#b", Format::OpenDkimConf, Some('#')),
            ("/run/a b", Format::OpenDkimConf, None),
            ("ORIGINATING,x", Format::OpenDkimList, Some(',')),
            ("/k/a b.private", Format::OpenDkimTable, Some(' ')),
            ("/k/a:b.private", Format::OpenDkimTable, None),
            ("/a,inet:203.0.113.9:25", Format::Postfix, Some(',')),
            ("/a/${x}", Format::Postfix, Some('$')),
            ("/a')dnl", Format::SendmailMc, Some('\'')),
            ("/a\u{7f}", Format::Applied, Some('\u{7f}')),
        ];
        for (value, format, want) in cases {
            let got = check(value, *format).err().map(|u| u.found);
            assert_eq!(got, *want, "{value:?} in {format:?}");
        }
        assert_eq!(
            check("/a\nb", Format::Postfix).unwrap_err().to_string(),
            "it holds a line break, which main.cf or master.cf cannot carry"
        );
    }

    #[test]
    fn percent_is_doubled_for_systemd() {
        assert_eq!(systemd_escape("/opt/100%/x"), "/opt/100%%/x");
        assert!(matches!(systemd_escape("/opt/x"), Cow::Borrowed(_)));
    }
}
