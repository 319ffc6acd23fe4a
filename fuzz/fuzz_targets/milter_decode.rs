//! The milter codec on arbitrary bytes, both directions: whatever the
//! peer sends, decoding terminates without panicking, never consumes a
//! partial packet, and whatever decodes re-encodes to a packet that
//! decodes to the same value (so the codec and its encoder agree on the
//! wire format).
//!
//! The first input byte picks the packet-size limit (a small limit
//! exercises the "too large" path; the default one the normal path).

#![no_main]

use bytes::BytesMut;
use dkimctl::milter::{DEFAULT_MAX_PACKET, ProtocolError, decode_command, decode_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let max = if pick & 1 == 0 {
        DEFAULT_MAX_PACKET
    } else {
        usize::from(pick)
    };

    let mut buf = BytesMut::from(rest);
    // Each successful decode consumes at least five bytes and each error
    // either consumes a packet or stops us, so this loop is bounded; the
    // explicit cap guards against a regression that consumes nothing.
    for _ in 0..=rest.len() {
        let before = buf.len();
        match decode_command(&mut buf, max) {
            Ok(Some(cmd)) => {
                assert!(buf.len() < before, "a decoded command consumed nothing");
                let mut again = BytesMut::new();
                cmd.encode(&mut again)
                    .expect("a decoded command re-encodes");
                assert_eq!(decode_command(&mut again, usize::MAX >> 1), Ok(Some(cmd)));
                assert!(again.is_empty(), "re-encoding left trailing bytes");
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "an incomplete packet was consumed");
                break;
            }
            // Framing errors leave the buffer as it was; the server closes.
            Err(ProtocolError::Empty | ProtocolError::TooLarge { .. }) => {
                assert_eq!(buf.len(), before, "a refused packet was consumed");
                break;
            }
            Err(_) => assert!(buf.len() < before, "a bad packet was not consumed"),
        }
    }

    let mut buf = BytesMut::from(rest);
    for _ in 0..=rest.len() {
        let before = buf.len();
        match decode_reply(&mut buf, max) {
            Ok(Some(reply)) => {
                let mut again = BytesMut::new();
                reply
                    .encode(&mut again)
                    .expect("a decoded reply re-encodes");
                assert_eq!(decode_reply(&mut again, usize::MAX >> 1), Ok(Some(reply)));
            }
            Ok(None) | Err(ProtocolError::Empty | ProtocolError::TooLarge { .. }) => break,
            Err(_) => assert!(buf.len() < before, "a bad reply was not consumed"),
        }
    }
});
