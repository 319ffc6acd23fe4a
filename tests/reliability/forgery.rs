//! Forgery: Authentication-Results in our name and two From fields.

use dkimctl::milter::Reply;
use dkimctl::milter::client::{MilterClient, apply_replies};

use super::{AUTHSERV_ID, signing};
use crate::support::client::{LOCAL, REMOTE, macros, runtime, signatures};
use crate::support::configs::Keyed;
use crate::support::serve::Serve;

/// Through the real daemon: an incoming Authentication-Results with our
/// authserv-id (any case, after a comment) is removed and ours added; a
/// foreign one stays; a message with two From headers is not signed and
/// gets `on_failure.bad_from` (reject by default).
#[test]
fn forged_authentication_results_are_removed_and_two_froms_are_not_signed() {
    let s = Keyed::new(&signing("sign+verify"));
    let d = Serve::start(&s.root);
    let rt = runtime();
    let incoming: &[(&[u8], &[u8])] = &[
        (b"Authentication-Results", b" other.example; dkim=pass"),
        (
            b"Authentication-Results",
            b" (forged) MX.Example.NET; dkim=pass header.d=example.com",
        ),
        (b"From", b" someone@example.org"),
        (b"Authentication-Results", b" mx.example.net; dkim=pass"),
        (b"Subject", b" hi"),
    ];
    let (replies, ls) = rt.block_on(async {
        let mut c = MilterClient::connect(d.addr()).await.unwrap();
        c.negotiate().await.unwrap();
        let r = c
            .send_message(&macros(), REMOTE, incoming, b"body\r\n")
            .await
            .unwrap();
        (r, c.leading_space())
    });
    let delivered =
        String::from_utf8_lossy(&apply_replies(incoming, b"body\r\n", &replies, ls)).into_owned();
    let ours: Vec<&str> = delivered
        .lines()
        .filter(|l| {
            l.to_ascii_lowercase()
                .starts_with("authentication-results:")
        })
        .collect();
    assert_eq!(ours.len(), 2, "{delivered}");
    assert!(
        ours.iter().any(|l| l.contains("other.example")),
        "{delivered}"
    );
    assert!(
        !delivered.contains("(forged)") && !delivered.contains("mx.example.net; dkim=pass"),
        "{delivered}"
    );
    assert!(
        delivered.contains(&format!("{AUTHSERV_ID};")),
        "{delivered}"
    );

    let two_froms: &[(&[u8], &[u8])] = &[
        (b"From", b" jose@example.com"),
        (b"From", b" mallory@example.com"),
        (b"Subject", b" hi"),
    ];
    let replies = rt.block_on(async {
        let mut c = MilterClient::connect(d.addr()).await.unwrap();
        c.negotiate().await.unwrap();
        c.send_message(&macros(), LOCAL, two_froms, b"body\r\n")
            .await
            .unwrap()
    });
    assert_eq!(signatures(&replies), 0, "{replies:?}");
    assert!(
        matches!(replies.last(), Some(Reply::ReplyCode(t)) if t.starts_with(b"550 5.7.1")),
        "{replies:?}"
    );
    assert!(d.stop().success());
}

/// Through the real daemon, in the directions a forged
/// Authentication-Results used to survive (issue 15, item 4): from a
/// trusted client (signed), in a header block over `max_header_size`
/// (not verified), and with a final dot on our authserv-id; each is
/// removed, and the delivered message keeps every other header.
#[test]
fn forged_authentication_results_are_removed_in_every_direction() {
    let s = Keyed::new(&signing("sign+verify").set("engine.max_header_size", "1K"));
    let d = Serve::start(&s.root);
    let rt = runtime();
    let filler = vec![b'x'; 2000];
    type Field<'a> = (&'a [u8], &'a [u8]);
    let cases: [(&str, std::net::IpAddr, Vec<Field>); 2] = [
        (
            "trusted client",
            LOCAL,
            vec![
                (b"Authentication-Results", b" mx.example.net.; dkim=pass"),
                (b"From", b" jose@example.com"),
                (b"Subject", b" hi"),
            ],
        ),
        (
            "header block over max_header_size",
            REMOTE,
            vec![
                (b"From", b" someone@example.org"),
                (b"X-Filler", &filler[..]),
                (b"Authentication-Results", b" MX.example.net. ; dkim=pass"),
                (b"Subject", b" hi"),
            ],
        ),
    ];
    for (what, ip, headers) in cases {
        let (replies, ls) = rt.block_on(async {
            let mut c = MilterClient::connect(d.addr()).await.unwrap();
            c.negotiate().await.unwrap();
            let r = c
                .send_message(&macros(), ip, &headers, b"body\r\n")
                .await
                .unwrap();
            (r, c.leading_space())
        });
        let delivered =
            String::from_utf8_lossy(&apply_replies(&headers, b"body\r\n", &replies, ls))
                .into_owned();
        assert!(
            !delivered.contains("dkim=pass"),
            "{what}: the forged header was delivered:\n{delivered}"
        );
        assert!(delivered.contains("Subject: hi"), "{what}: {delivered}");
        assert_eq!(
            replies.last(),
            Some(&Reply::Continue),
            "{what}: {replies:?}"
        );
    }
    assert!(d.stop().success());
}
