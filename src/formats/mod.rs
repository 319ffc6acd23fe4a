//! The file formats of other programs, parsed and edited in one place
//! each, without I/O.
//!
//! audit and import read these formats; plan edits them; both use the
//! same code, so what audit reports and what plan changes cannot disagree.
//! Edits keep every byte they do not need to change.
//!
//! - [`lines`]: physical lines with their terminators (byte-exact edits).
//! - [`names`]: domain names, selectors and host patterns.
//! - [`postfix`]: main.cf and master.cf (postconf(5), master(5)): logical
//!   lines, parameters, `-o` overrides, milter lists, merging our milter.
//! - [`opendkim`]: opendkim.conf and its datasets (KeyTable, SigningTable,
//!   host lists), as OpenDKIM 2.11 reads them.
//! - [`sendmail`]: sendmail.mc `INPUT_MAIL_FILTER` lines.
//! - [`systemd`]: unit files and systemd's word splitting.
//! - [`passwd`]: `/etc/passwd` and `/etc/group`.
//! - [`sysusers`]: sysusers.d(5) lines.
//! - [`tsig`]: TSIG key files as `tsig-keygen` writes them.
//! - [`values`]: what a value may hold to be written into each of these
//!   formats, and their escaping.

pub mod lines;
pub mod names;
pub mod opendkim;
pub mod passwd;
pub mod postfix;
pub mod sendmail;
pub mod systemd;
pub mod sysusers;
pub mod tsig;
pub mod values;
