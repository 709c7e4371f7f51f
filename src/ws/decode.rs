//! The incremental decoder: bytes in, whole messages out (RFC 6455 §5, §6.2, §7.4).
//!
//! A frame header is gathered (up to 14 bytes) and checked as its bytes arrive, so a bad
//! first byte fails at once; a payload is unmasked while it is copied. Data frames are
//! joined into the message buffer, control frames into a 125-byte array; text is checked
//! for UTF-8 as each piece arrives. What the decoder holds is bounded: the message buffer
//! never exceeds `max_message` (a frame that would take it past is refused from its
//! header, before any of its payload is read), plus one header and one control payload.

use std::str;

use super::frame::{MAX_CONTROL_PAYLOAD, MAX_HEADER, OpCode, apply_mask};
use super::{CloseCode, Message, ProtocolError, Role};

/// The most the message buffer reserves ahead of bytes that have arrived: a header that
/// announces a large frame does not make the decoder allocate for it before the payload
/// comes (a peer that sends headers alone would pin `max_message` per connection; a
/// server charges the capacity to its memory budget, so it stays close to what arrived).
const RESERVE_AHEAD: usize = 4 * 1024;

/// Decodes the frames one peer sends, fed in pieces of any size, into [`Message`]s.
///
/// ```
/// use h1server::ws::{Decoder, Message, Role};
///
/// let mut dec = Decoder::new(Role::Client, 1024);
/// // Two messages in one read: an unmasked "Hel" + "lo" (RFC 6455 §5.7), then a ping.
/// let input = [0x01, 0x03, b'H', b'e', b'l', 0x80, 0x02, b'l', b'o', 0x89, 0x00];
/// let mut rest = &input[..];
/// let mut got = Vec::new();
/// while !rest.is_empty() {
///     let (used, msg) = dec.decode(rest);
///     rest = &rest[used..];
///     match msg {
///         Some(Ok(m)) => got.push(m),
///         Some(Err(e)) => panic!("send close {} and hang up: {e}", e.code()),
///         None => break, // everything was used; wait for more bytes
///     }
/// }
/// assert_eq!(got, [Message::Text("Hello".into()), Message::Ping(vec![])]);
/// ```
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    max_message: usize,
    state: State,
    /// The header being gathered.
    hdr: [u8; MAX_HEADER],
    hdr_len: usize,
    /// The frame whose payload is being read (valid in `State::Payload`).
    frame: Frame,
    /// The data message in progress: `Text` or `Binary` from its first frame until its
    /// last, `None` between messages.
    msg_op: Option<OpCode>,
    /// The data message's payload so far.
    msg: Vec<u8>,
    /// How much of `msg` is known to be UTF-8 (text only): the rest is at most the first
    /// 3 bytes of a character whose end has not arrived.
    utf8_ok: usize,
    /// The payload of the control frame in progress.
    ctrl: [u8; MAX_CONTROL_PAYLOAD],
    ctrl_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Gathering a frame header.
    Header,
    /// Reading the payload of `frame`.
    Payload,
    /// A close frame was decoded: nothing more is read.
    Closed,
    /// The peer broke the protocol: every call returns this error.
    Failed(ProtocolError),
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    fin: bool,
    op: OpCode,
    mask: Option<[u8; 4]>,
    /// Payload length.
    len: u64,
    /// Payload bytes read so far.
    read: u64,
}

type Step = Option<Result<Message, ProtocolError>>;

const fn err(code: CloseCode, reason: &'static str) -> ProtocolError {
    ProtocolError::new(code, reason)
}

const RESERVED_BITS: ProtocolError = err(CloseCode::PROTOCOL, "reserved bits set");
const RESERVED_OPCODE: ProtocolError = err(CloseCode::PROTOCOL, "reserved opcode");
const FRAGMENTED_CONTROL: ProtocolError = err(CloseCode::PROTOCOL, "fragmented control frame");
const LONG_CONTROL: ProtocolError =
    err(CloseCode::PROTOCOL, "control frame payload over 125 bytes");
const UNMASKED: ProtocolError = err(CloseCode::PROTOCOL, "unmasked frame from a client");
const MASKED: ProtocolError = err(CloseCode::PROTOCOL, "masked frame from a server");
const STRAY_CONTINUATION: ProtocolError =
    err(CloseCode::PROTOCOL, "continuation frame outside a message");
const UNFINISHED_MESSAGE: ProtocolError = err(
    CloseCode::PROTOCOL,
    "new data frame before the previous message ended",
);
const NON_MINIMAL_LENGTH: ProtocolError = err(
    CloseCode::PROTOCOL,
    "payload length not in its shortest form",
);
const LENGTH_HIGH_BIT: ProtocolError =
    err(CloseCode::PROTOCOL, "payload length with its high bit set");
const TOO_BIG: ProtocolError = err(CloseCode::TOO_BIG, "message over the size limit");
const BAD_UTF8: ProtocolError = err(CloseCode::INVALID_PAYLOAD, "text is not UTF-8");
const CLOSE_ONE_BYTE: ProtocolError = err(CloseCode::PROTOCOL, "close payload of 1 byte");
const CLOSE_BAD_CODE: ProtocolError = err(CloseCode::PROTOCOL, "invalid close code");
const CLOSE_BAD_REASON: ProtocolError =
    err(CloseCode::INVALID_PAYLOAD, "close reason is not UTF-8");

impl Decoder {
    /// A decoder for the frames of the peer of `role` (a server decodes what clients send,
    /// which must be masked), taking data messages of at most `max_message` payload bytes
    /// (all fragments together; control frames do not count).
    pub fn new(role: Role, max_message: usize) -> Self {
        Decoder {
            role,
            max_message,
            state: State::Header,
            hdr: [0; MAX_HEADER],
            hdr_len: 0,
            frame: Frame {
                fin: true,
                op: OpCode::Binary,
                mask: None,
                len: 0,
                read: 0,
            },
            msg_op: None,
            msg: Vec::new(),
            utf8_ok: 0,
            ctrl: [0; MAX_CONTROL_PAYLOAD],
            ctrl_len: 0,
        }
    }

    /// Feeds `input`, the next bytes from the peer; returns how many were used and what
    /// they completed:
    ///
    /// - `(n, Some(Ok(message)))`: a message (or a control frame) is complete; the bytes
    ///   after `n` are not used yet — call again with them. A control frame that arrives
    ///   between the fragments of a data message is returned at once.
    /// - `(n, None)` with `n == input.len()`: every byte was used; more are needed.
    /// - `(n, Some(Err(e)))`: the peer broke the protocol: send a close frame with
    ///   `e.code()` and close. The decoder stays failed: every later call returns
    ///   `(0, Some(Err(e)))`.
    ///
    /// After a [`Message::Close`], input is ignored: `(input.len(), None)`.
    ///
    /// Splitting the input differently never changes the messages or the error.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Step) {
        let mut pos = 0;
        loop {
            match self.state {
                State::Failed(ref e) => return (0, Some(Err(e.clone()))),
                State::Closed => return (input.len(), None),
                State::Header => match self.header(&input[pos..]) {
                    Ok((used, done)) => {
                        pos += used;
                        if !done {
                            return (pos, None);
                        }
                    }
                    Err(e) => return (pos, Some(Err(self.fail(e)))),
                },
                State::Payload => {
                    let (used, step) = self.payload(&input[pos..]);
                    pos += used;
                    match step {
                        Some(Err(e)) => return (pos, Some(Err(self.fail(e)))),
                        Some(Ok(m)) => {
                            if matches!(m, Message::Close(_)) {
                                // A message it interrupted will not be finished.
                                self.state = State::Closed;
                                self.msg = Vec::new();
                                self.msg_op = None;
                            }
                            return (pos, Some(Ok(m)));
                        }
                        None if self.state == State::Payload => return (pos, None),
                        None => {}
                    }
                }
            }
        }
    }

    /// Hands a message's buffer back (the `Vec` of a [`Message::Binary`], or a
    /// [`Message::Text`]'s `into_bytes()`) to be reused for the next message, when the
    /// decoder holds none. Optional: without it the next message allocates its own.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.msg.capacity() == 0 && self.msg_op.is_none() {
            buf.clear();
            self.msg = buf;
        }
    }

    /// Bytes the decoder holds for a message in progress (its buffer's capacity): what a
    /// server charges to its memory budget.
    pub fn buffered(&self) -> usize {
        self.msg.capacity()
    }

    /// True while a frame or a fragmented message is partly received.
    pub fn is_mid_message(&self) -> bool {
        self.hdr_len > 0 || self.state == State::Payload || self.msg_op.is_some()
    }

    /// True once a close frame was decoded.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The error the decoder failed with, if it did.
    pub fn error(&self) -> Option<&ProtocolError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        self.state = State::Failed(e.clone());
        self.msg = Vec::new();
        e
    }

    /// Gathers header bytes from `input`, checking each part as soon as it is complete:
    /// the first two bytes, then the extended length, then the masking key. Returns the
    /// bytes used and whether the header is complete (then the state is `Payload`).
    fn header(&mut self, input: &[u8]) -> Result<(usize, bool), ProtocolError> {
        let mut used = 0;
        loop {
            let need = self.header_len();
            if self.hdr_len == need {
                self.start_frame();
                return Ok((used, true));
            }
            let n = (need - self.hdr_len).min(input.len() - used);
            if n == 0 {
                return Ok((used, false));
            }
            let before = self.hdr_len;
            self.hdr[before..before + n].copy_from_slice(&input[used..used + n]);
            self.hdr_len += n;
            used += n;
            if before < 2 && self.hdr_len >= 2 {
                self.check_first_bytes()?;
            }
            let ext = 2 + self.ext_len();
            if before < ext && self.hdr_len >= ext {
                self.check_length()?;
            }
        }
    }

    /// The header's full length, as far as it is known (2 until the second byte is in).
    fn header_len(&self) -> usize {
        if self.hdr_len < 2 {
            return 2;
        }
        2 + self.ext_len() + if self.hdr[1] & 0x80 != 0 { 4 } else { 0 }
    }

    /// Bytes of extended length announced by the second byte.
    fn ext_len(&self) -> usize {
        match self.hdr[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        }
    }

    /// FIN, RSV1–3, opcode, MASK and the 7-bit length (§5.2, §5.4, §5.5, §5.1).
    fn check_first_bytes(&self) -> Result<(), ProtocolError> {
        let (b0, b1) = (self.hdr[0], self.hdr[1]);
        if b0 & 0x70 != 0 {
            // No extension is negotiated, so no RSV bit has a meaning (§5.2).
            return Err(RESERVED_BITS);
        }
        let op = OpCode::from_u8(b0 & 0x0f).ok_or(RESERVED_OPCODE)?;
        let fin = b0 & 0x80 != 0;
        if op.is_control() {
            if !fin {
                return Err(FRAGMENTED_CONTROL);
            }
            if usize::from(b1 & 0x7f) > MAX_CONTROL_PAYLOAD {
                return Err(LONG_CONTROL);
            }
        }
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => return Err(UNMASKED),
            (Role::Client, true) => return Err(MASKED),
            _ => {}
        }
        match (op, self.msg_op) {
            (OpCode::Continuation, None) => Err(STRAY_CONTINUATION),
            (OpCode::Text | OpCode::Binary, Some(_)) => Err(UNFINISHED_MESSAGE),
            _ => Ok(()),
        }
    }

    /// The payload length: a valid 64-bit length (§5.2: its most significant bit MUST be
    /// 0, else the frame is malformed: 1002, whatever the limit), then within the message
    /// limit (1009), then in its shortest form (§5.2).
    fn check_length(&self) -> Result<(), ProtocolError> {
        let len = self.payload_len();
        if len >> 63 != 0 {
            // A length no frame can have: a protocol error, not "too big" (which would
            // tell the client to retry with a smaller message).
            return Err(LENGTH_HIGH_BIT);
        }
        let op = OpCode::from_u8(self.hdr[0] & 0x0f).unwrap_or(OpCode::Binary);
        if !op.is_control() {
            // Before the shortest-form check: any length over the limit is 1009.
            let room = self.max_message - self.msg.len();
            if len > room as u64 {
                return Err(TOO_BIG);
            }
        }
        let minimal = match self.ext_len() {
            2 => len >= 126,
            8 => len > u64::from(u16::MAX),
            _ => true,
        };
        if !minimal {
            Err(NON_MINIMAL_LENGTH)
        } else {
            Ok(())
        }
    }

    fn payload_len(&self) -> u64 {
        match self.ext_len() {
            2 => u64::from(u16::from_be_bytes([self.hdr[2], self.hdr[3]])),
            8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.hdr[2..10]);
                u64::from_be_bytes(b)
            }
            _ => u64::from(self.hdr[1] & 0x7f),
        }
    }

    /// The header is complete and checked: sets up the frame's payload.
    fn start_frame(&mut self) {
        let op = OpCode::from_u8(self.hdr[0] & 0x0f).unwrap_or(OpCode::Binary);
        let mask = (self.hdr[1] & 0x80 != 0).then(|| {
            let k = 2 + self.ext_len();
            [
                self.hdr[k],
                self.hdr[k + 1],
                self.hdr[k + 2],
                self.hdr[k + 3],
            ]
        });
        let len = self.payload_len();
        self.frame = Frame {
            fin: self.hdr[0] & 0x80 != 0,
            op,
            mask,
            len,
            read: 0,
        };
        self.hdr_len = 0;
        self.state = State::Payload;
        match op {
            OpCode::Text | OpCode::Binary => {
                self.msg_op = Some(op);
                self.msg.clear();
                self.utf8_ok = 0;
            }
            OpCode::Continuation => {}
            OpCode::Close | OpCode::Ping | OpCode::Pong => self.ctrl_len = 0,
        }
        if !op.is_control() {
            // `len` fits the room left under `max_message` (check_length).
            self.msg.reserve((len as usize).min(RESERVE_AHEAD));
        }
    }

    /// Reads payload bytes of the current frame from `input`; at the frame's end, returns
    /// what it completes (and sets the state back to `Header`).
    fn payload(&mut self, input: &[u8]) -> (usize, Step) {
        let f = self.frame;
        let left = f.len - f.read;
        let n = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
        let chunk = &input[..n];
        let offset = f.read as usize;
        if f.op.is_control() {
            let dst = &mut self.ctrl[self.ctrl_len..self.ctrl_len + n];
            dst.copy_from_slice(chunk);
            if let Some(key) = f.mask {
                apply_mask(dst, key, offset);
            }
            self.ctrl_len += n;
        } else {
            let start = self.msg.len();
            self.msg.extend_from_slice(chunk);
            if let Some(key) = f.mask {
                apply_mask(&mut self.msg[start..], key, offset);
            }
            if self.msg_op == Some(OpCode::Text) {
                if let Err(e) = self.check_utf8() {
                    return (n, Some(Err(e)));
                }
            }
        }
        self.frame.read += n as u64;
        if self.frame.read < f.len {
            return (n, None);
        }
        self.state = State::Header;
        (n, self.end_frame())
    }

    /// Checks the text received so far: an invalid sequence fails now; an incomplete one
    /// at the end waits for the next bytes (§8.1).
    fn check_utf8(&mut self) -> Result<(), ProtocolError> {
        match str::from_utf8(&self.msg[self.utf8_ok..]) {
            Ok(_) => self.utf8_ok = self.msg.len(),
            Err(e) if e.error_len().is_none() => self.utf8_ok += e.valid_up_to(),
            Err(_) => return Err(BAD_UTF8),
        }
        Ok(())
    }

    /// The current frame is complete: a control frame is returned, a final data frame
    /// completes its message.
    fn end_frame(&mut self) -> Step {
        let payload = &self.ctrl[..self.ctrl_len];
        match self.frame.op {
            OpCode::Ping => Some(Ok(Message::Ping(payload.to_vec()))),
            OpCode::Pong => Some(Ok(Message::Pong(payload.to_vec()))),
            OpCode::Close => Some(close_message(payload)),
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !self.frame.fin {
                    return None;
                }
                let op = self.msg_op.take();
                let data = std::mem::take(&mut self.msg);
                Some(if op == Some(OpCode::Text) {
                    // Checked piece by piece; what remains is a character cut off at the
                    // end. `from_utf8` checks it all again: this crate has no unsafe code.
                    String::from_utf8(data)
                        .map(Message::Text)
                        .map_err(|_| BAD_UTF8)
                } else {
                    Ok(Message::Binary(data))
                })
            }
        }
    }
}

/// A close frame's payload: empty, or a valid code and a UTF-8 reason (§5.5.1, §7.4).
fn close_message(payload: &[u8]) -> Result<Message, ProtocolError> {
    match payload {
        [] => Ok(Message::Close(None)),
        [_] => Err(CLOSE_ONE_BYTE),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid() {
                return Err(CLOSE_BAD_CODE);
            }
            let reason = str::from_utf8(reason).map_err(|_| CLOSE_BAD_REASON)?;
            Ok(Message::Close(Some((code, reason.to_string()))))
        }
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
