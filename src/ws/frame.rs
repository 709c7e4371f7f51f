//! WebSocket frames (RFC 6455 §5.2): the opcodes, encoding, and masking.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! Encoding always uses the shortest length form, as senders must (§5.2); the
//! [`Decoder`](super::Decoder) rejects longer ones.

use super::CloseCode;

/// The largest frame header: 2 bytes, an 8-byte length, a 4-byte masking key.
pub const MAX_HEADER: usize = 14;

/// The largest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (§5.2, §11.8). The other values (3–7, 11–15) are reserved and
/// rejected by the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0: a further fragment of the message in progress.
    Continuation = 0x0,
    /// 1: the first (or only) frame of a text message.
    Text = 0x1,
    /// 2: the first (or only) frame of a binary message.
    Binary = 0x2,
    /// 8: close (control).
    Close = 0x8,
    /// 9: ping (control).
    Ping = 0x9,
    /// 10: pong (control).
    Pong = 0xA,
}

impl OpCode {
    /// The opcode of these four bits, or `None` for a reserved one.
    pub fn from_u8(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// True for close, ping and pong: at most 125 bytes, never fragmented (§5.5).
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Appends one frame to `out`: its header (the shortest length form), then `payload`,
/// masked with `mask` when given (a client must mask every frame with a fresh random key,
/// §5.3; a server must not mask). No extension is negotiated, so RSV1–3 are 0.
///
/// # Panics
/// For a control frame ([`OpCode::is_control`]) that is not `fin` or whose payload is over
/// 125 bytes: the peer would have to fail the connection (§5.5).
pub fn encode(out: &mut Vec<u8>, fin: bool, op: OpCode, payload: &[u8], mask: Option<[u8; 4]>) {
    if op.is_control() {
        assert!(
            fin && payload.len() <= MAX_CONTROL_PAYLOAD,
            "a {op:?} frame must be final and carry at most 125 bytes (RFC 6455 §5.5)"
        );
    }
    let start = encode_header(out, fin, op, payload.len() as u64, mask);
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// Appends a close frame (§5.5.1): no payload when `code` is `None` (the reason is then
/// dropped: a reason needs a code before it), else the code and `reason`, the reason cut
/// at a character boundary to fit the 125-byte limit (123 bytes after the code).
///
/// The code is sent as given: 1005, 1006 and 1015 must not be sent (§7.4.1), nor
/// any code for which [`CloseCode::is_valid`] is false.
pub fn encode_close(
    out: &mut Vec<u8>,
    code: Option<CloseCode>,
    reason: &str,
    mask: Option<[u8; 4]>,
) {
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let len = match code {
        None => 0,
        Some(CloseCode(c)) => {
            payload[..2].copy_from_slice(&c.to_be_bytes());
            let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
            2 + cut
        }
    };
    encode(out, true, OpCode::Close, &payload[..len], mask);
}

/// Appends a frame header for a payload of `len` bytes; returns where the payload starts.
pub(crate) fn encode_header(
    out: &mut Vec<u8>,
    fin: bool,
    op: OpCode,
    len: u64,
    mask: Option<[u8; 4]>,
) -> usize {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(if fin { 0x80 } else { 0 } | op as u8);
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out.len()
}

/// XORs `buf` with `key` (§5.3), `buf` being the payload from byte `offset` on: masking
/// and unmasking are the same operation, and a payload may be masked piece by piece.
/// Eight bytes at a time.
pub(crate) fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut k = key;
    k.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// RFC 6455 §5.7: (name, fin, opcode, payload, mask, wire bytes).
    #[allow(clippy::type_complexity)]
    const RFC_EXAMPLES: &[(&str, bool, OpCode, &[u8], Option<[u8; 4]>, &[u8])] = &[
        (
            "unmasked text Hello",
            true,
            OpCode::Text,
            b"Hello",
            None,
            &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        ),
        (
            "masked text Hello",
            true,
            OpCode::Text,
            b"Hello",
            Some(KEY),
            &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
        ),
        (
            "first fragment Hel",
            false,
            OpCode::Text,
            b"Hel",
            None,
            &[0x01, 0x03, 0x48, 0x65, 0x6c],
        ),
        (
            "last fragment lo",
            true,
            OpCode::Continuation,
            b"lo",
            None,
            &[0x80, 0x02, 0x6c, 0x6f],
        ),
        (
            "unmasked ping Hello",
            true,
            OpCode::Ping,
            b"Hello",
            None,
            &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        ),
        (
            "masked pong Hello",
            true,
            OpCode::Pong,
            b"Hello",
            Some(KEY),
            &[
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
        ),
    ];

    #[test]
    fn rfc_examples_encode() {
        for &(name, fin, op, payload, mask, wire) in RFC_EXAMPLES {
            let mut out = Vec::new();
            encode(&mut out, fin, op, payload, mask);
            assert_eq!(out, wire, "{name}");
        }
    }

    #[test]
    fn length_forms() {
        // (payload length, header bytes): 7-bit up to 125, 16-bit up to 65535, then 64-bit;
        // the RFC's 256-byte and 64 KiB binary examples are rows 4 and 6.
        let table: &[(usize, &[u8])] = &[
            (0, &[0x82, 0x00]),
            (125, &[0x82, 0x7d]),
            (126, &[0x82, 0x7e, 0x00, 0x7e]),
            (256, &[0x82, 0x7e, 0x01, 0x00]),
            (65535, &[0x82, 0x7e, 0xff, 0xff]),
            (65536, &[0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
            (70000, &[0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]),
        ];
        for &(len, header) in table {
            let payload = vec![0xa5; len];
            let mut out = Vec::new();
            encode(&mut out, true, OpCode::Binary, &payload, None);
            assert_eq!(&out[..header.len()], header, "{len}");
            assert_eq!(&out[header.len()..], &payload[..], "{len}");
            // Masked: the mask bit, then the key after the length.
            let mut out = Vec::new();
            encode(&mut out, true, OpCode::Binary, &payload, Some(KEY));
            assert_eq!(out[1], header[1] | 0x80, "{len}");
            assert_eq!(&out[header.len()..header.len() + 4], KEY, "{len}");
        }
    }

    #[test]
    fn close_frames() {
        // (code, reason, payload).
        let long = "é".repeat(70); // 140 bytes: cut to 122, the last whole character
        let table: Vec<(Option<CloseCode>, &str, Vec<u8>)> = vec![
            (None, "", vec![]),
            (None, "dropped without a code", vec![]),
            (Some(CloseCode::NORMAL), "", vec![0x03, 0xe8]),
            (Some(CloseCode::TOO_BIG), "big", b"\x03\xf1big".to_vec()),
            (Some(CloseCode(4000)), &long, {
                let mut p = vec![0x0f, 0xa0];
                p.extend_from_slice(&long.as_bytes()[..122]);
                p
            }),
        ];
        for (code, reason, payload) in table {
            let mut out = Vec::new();
            encode_close(&mut out, code, reason, None);
            let mut want = Vec::new();
            encode(&mut want, true, OpCode::Close, &payload, None);
            assert_eq!(out, want, "{code:?} {reason:?}");
            assert!(out.len() - 2 <= MAX_CONTROL_PAYLOAD);
        }
        // 123 ASCII bytes fit exactly.
        let mut out = Vec::new();
        encode_close(&mut out, Some(CloseCode::NORMAL), &"x".repeat(200), None);
        assert_eq!(out[1], 125);
    }

    #[test]
    #[should_panic(expected = "at most 125 bytes")]
    fn oversized_control_frame_panics() {
        encode(&mut Vec::new(), true, OpCode::Ping, &[0; 126], None);
    }

    #[test]
    #[should_panic(expected = "must be final")]
    fn fragmented_control_frame_panics() {
        encode(&mut Vec::new(), false, OpCode::Pong, b"", None);
    }

    #[test]
    fn mask_in_pieces_equals_mask_at_once() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, KEY, 0);
        for &cut in &[0, 1, 2, 3, 5, 7, 8, 9, 13, 999, 1000] {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, KEY, 0);
            apply_mask(b, KEY, cut);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
        for (i, (&m, &d)) in whole.iter().zip(&data).enumerate() {
            assert_eq!(m, d ^ KEY[i % 4]);
        }
    }

    #[test]
    fn opcodes() {
        for bits in 0..16u8 {
            let op = OpCode::from_u8(bits);
            assert_eq!(
                op.is_some(),
                matches!(bits, 0 | 1 | 2 | 8 | 9 | 10),
                "{bits}"
            );
            if let Some(op) = op {
                assert_eq!(op as u8, bits);
                assert_eq!(op.is_control(), bits >= 8);
            }
        }
    }
}
