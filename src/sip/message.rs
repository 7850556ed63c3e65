//! SIP messages off the wire: framing (a datagram, or a TCP stream cut at Content-Length), the
//! limits every message must keep, and parsing with rsip. Whatever a sender puts on the wire
//! gives a message or a [`ParseError`]; nothing here panics or allocates past the limits.

use rsip::prelude::*;
use rsip::{Header, Method, Request, SipMessage};

/// Largest message taken, headers and body: far above any INVITE with SDP, far below a size
/// that could tie up memory. Larger ones are dropped (UDP) or end the connection (TCP).
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Most header lines in one message.
const MAX_HEADERS: usize = 80;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("the message does not end its headers")]
    Incomplete,
    #[error("not a SIP message: {0}")]
    Garbage(String),
    #[error("missing or unreadable header {0}")]
    BadHeader(&'static str),
    #[error("Content-Length does not match the body")]
    BadContentLength,
    #[error("too many header lines")]
    TooManyHeaders,
    #[error("CSeq names another method than the request line")]
    CseqMismatch,
}

impl ParseError {
    /// Stable label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Incomplete => "incomplete",
            Self::Garbage(_) => "garbage",
            Self::BadHeader(_) => "bad_header",
            Self::BadContentLength => "bad_content_length",
            Self::TooManyHeaders => "too_many_headers",
            Self::CseqMismatch => "cseq_mismatch",
        }
    }
}

/// Where the headers end (the index after the blank line).
fn header_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// RFC 3261 7.3.3 compact header names, which rsip does not know.
fn expand_compact(name: &str) -> Option<&'static str> {
    Some(match name {
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "e" | "E" => "Content-Encoding",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "f" | "F" => "From",
        "s" | "S" => "Subject",
        "k" | "K" => "Supported",
        "t" | "T" => "To",
        "v" | "V" => "Via",
        _ => return None,
    })
}

/// The value of Content-Length among raw header lines, if there is one. Two that disagree, or
/// one that is not a number, is an error.
fn content_length(head: &str) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name == "l" || name == "L" {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| ParseError::BadContentLength)?;
            if found.is_some_and(|f| f != n) {
                return Err(ParseError::BadContentLength);
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// Parses one whole message. Over UDP a body longer than Content-Length is cut to it (RFC 3261
/// 18.3); a shorter one, or a missing Content-Length on a stream, is an error.
pub fn parse(bytes: &[u8], stream: bool) -> Result<SipMessage, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    let end = header_end(bytes).ok_or(ParseError::Incomplete)?;
    let head = std::str::from_utf8(&bytes[..end - 4])
        .map_err(|_| ParseError::Garbage("headers are not UTF-8".into()))?;
    let body = &bytes[end..];
    let body = match content_length(head)? {
        Some(n) if n > body.len() => return Err(ParseError::BadContentLength),
        Some(n) => &body[..n],
        None if stream => return Err(ParseError::BadHeader("Content-Length")),
        None => body,
    };
    // Unfold continuation lines, expand compact names.
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if lines.len() < 2 {
                return Err(ParseError::Garbage("a continuation line starts it".into()));
            }
            if let Some(last) = lines.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
            continue;
        }
        lines.push(line.to_string());
        if lines.len() > MAX_HEADERS + 1 {
            return Err(ParseError::TooManyHeaders);
        }
    }
    let mut text = String::with_capacity(head.len() + 64);
    for (i, line) in lines.iter().enumerate() {
        if i > 0
            && let Some((name, value)) = line.split_once(':')
            && let Some(full) = expand_compact(name.trim())
        {
            text.push_str(full);
            text.push(':');
            text.push_str(value);
        } else {
            text.push_str(line);
        }
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let mut raw = text.into_bytes();
    raw.extend_from_slice(body);
    // rsip parses with nom; a bug there must not take the endpoint down with it.
    let parsed = std::panic::catch_unwind(|| SipMessage::try_from(raw.as_slice()))
        .map_err(|_| ParseError::Garbage("the parser failed".into()))?
        .map_err(|e| ParseError::Garbage(e.to_string()))?;
    validate(&parsed)?;
    Ok(parsed)
}

/// The headers every message must carry to be answered or matched (RFC 3261 8.1.1).
fn validate(msg: &SipMessage) -> Result<(), ParseError> {
    msg.via_header()
        .ok()
        .and_then(|v| v.typed().ok())
        .ok_or(ParseError::BadHeader("Via"))?;
    msg.from_header()
        .ok()
        .and_then(|v| v.typed().ok())
        .ok_or(ParseError::BadHeader("From"))?;
    msg.to_header()
        .ok()
        .and_then(|v| v.typed().ok())
        .ok_or(ParseError::BadHeader("To"))?;
    msg.call_id_header()
        .ok()
        .filter(|c| !c.value().trim().is_empty())
        .ok_or(ParseError::BadHeader("Call-ID"))?;
    let cseq = msg
        .cseq_header()
        .ok()
        .and_then(|v| v.typed().ok())
        .ok_or(ParseError::BadHeader("CSeq"))?;
    if let SipMessage::Request(r) = msg
        && r.method != cseq.method
        && !(r.method == Method::Ack && cseq.method == Method::Ack)
    {
        return Err(ParseError::CseqMismatch);
    }
    Ok(())
}

/// The fields of a request the transaction and dialog layers key on, read once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestKey {
    pub method: Method,
    /// The top Via's branch (RFC 3261 17.2.3), with its sent-by, identifies the transaction.
    pub branch: String,
    pub sent_by: String,
    pub call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub cseq: u32,
}

impl RequestKey {
    pub fn of(req: &Request) -> Result<Self, ParseError> {
        let via = req
            .via_header()
            .ok()
            .and_then(|v| v.typed().ok())
            .ok_or(ParseError::BadHeader("Via"))?;
        let from = req
            .from_header()
            .ok()
            .and_then(|v| v.typed().ok())
            .ok_or(ParseError::BadHeader("From"))?;
        let to = req
            .to_header()
            .ok()
            .and_then(|v| v.typed().ok())
            .ok_or(ParseError::BadHeader("To"))?;
        let cseq = req
            .cseq_header()
            .ok()
            .and_then(|v| v.typed().ok())
            .ok_or(ParseError::BadHeader("CSeq"))?;
        let call_id = req
            .call_id_header()
            .map_err(|_| ParseError::BadHeader("Call-ID"))?
            .value()
            .trim()
            .to_string();
        Ok(Self {
            method: req.method,
            branch: via.branch().map(|b| b.to_string()).unwrap_or_default(),
            sent_by: via.uri.host_with_port.to_string(),
            call_id,
            from_tag: from.tag().map(|t| t.to_string()),
            to_tag: to.tag().map(|t| t.to_string()),
            cseq: cseq.seq,
        })
    }
}

/// The user part of the request URI: the number dialled.
pub fn dialled(req: &Request) -> Option<String> {
    req.uri.user().map(|u| u.trim().to_string())
}

/// The user part of the From URI: who the caller says it is.
pub fn from_user(req: &Request) -> Option<String> {
    let from = req.from_header().ok()?.uri().ok()?;
    from.user().map(|u| u.trim().to_string())
}

/// The user part of the To URI: in a REGISTER, whose address of record it is.
pub fn to_user(req: &Request) -> Option<String> {
    let to = req.to_header().ok()?.uri().ok()?;
    to.user().map(|u| u.trim().to_string())
}

pub fn user_agent(req: &Request) -> Option<String> {
    req.headers.iter().find_map(|h| match h {
        Header::UserAgent(u) => Some(
            u.value()
                .chars()
                .filter(|c| !c.is_control())
                .take(128)
                .collect(),
        ),
        _ => None,
    })
}

/// Contacts of a REGISTER, each with the expiry it asks for, or `None` for `*`.
pub type Contacts = Option<Vec<(String, Option<u32>)>>;

/// A REGISTER's Contact and Expires headers (RFC 3261 10.2): `Ok(None)` when it has no
/// Contact (it asks for the bindings), else its contacts and its Expires. `Err` when one
/// cannot be read, or `*` comes with other contacts.
#[allow(clippy::result_unit_err)]
pub fn registration(req: &Request) -> Result<Option<(Contacts, Option<u32>)>, ()> {
    let mut expires = None;
    let mut contacts: Vec<(String, Option<u32>)> = Vec::new();
    let mut wildcard = false;
    for h in req.headers.iter() {
        match h {
            Header::Expires(e) => {
                expires = Some(e.value().trim().parse::<u32>().map_err(|_| ())?);
            }
            Header::Contact(c) => {
                for part in split_list(c.value()) {
                    let part = part.trim();
                    if part == "*" {
                        wildcard = true;
                        continue;
                    }
                    contacts.push(contact(part)?);
                }
            }
            _ => {}
        }
    }
    match (wildcard, contacts.is_empty()) {
        (true, true) => Ok(Some((None, expires))),
        (true, false) => Err(()),
        (false, true) => Ok(None),
        (false, false) => {
            if contacts.len() > 32 {
                return Err(());
            }
            Ok(Some((Some(contacts), expires)))
        }
    }
}

/// Splits a header value at the commas that are outside `<...>` and quotes.
fn split_list(v: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut angle, mut quoted, mut escaped) = (0, false, false, false);
    for (i, c) in v.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&v[start..]);
    parts
}

/// One contact: its URI (checked) and its `expires` parameter.
fn contact(part: &str) -> Result<(String, Option<u32>), ()> {
    let (uri, params) = match (part.find('<'), part.rfind('>')) {
        (Some(a), Some(b)) if a < b => (&part[a + 1..b], &part[b + 1..]),
        (None, None) => part.split_once(';').unwrap_or((part, "")),
        _ => return Err(()),
    };
    let uri = uri.trim();
    if uri.is_empty() || uri.len() > 512 || rsip::Uri::try_from(uri).is_err() {
        return Err(());
    }
    let mut expires = None;
    for p in params.split(';') {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("expires")
        {
            expires = Some(v.trim().parse::<u32>().map_err(|_| ())?);
        }
    }
    Ok((uri.to_string(), expires))
}

/// Who is calling, as people read it: the From display name, else its user.
pub fn caller_name(req: &Request) -> String {
    let from = req.from_header().ok();
    let display = from
        .and_then(|f| f.display_name().ok().flatten())
        .map(|d| d.trim().trim_matches('"').trim().to_string())
        .filter(|d| !d.is_empty());
    let user = from
        .and_then(|f| f.uri().ok())
        .and_then(|u| u.user().map(str::to_string));
    let name = display.or(user).unwrap_or_else(|| "Phone".into());
    name.chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect::<String>()
}

/// A response to `req`: its Via, From, Call-ID and CSeq, its To with `to_tag` added when it
/// has none (RFC 3261 8.2.6.2).
pub fn response(
    req: &Request,
    code: u16,
    to_tag: Option<&str>,
    extra: Vec<Header>,
    body: Option<(&str, Vec<u8>)>,
) -> Vec<u8> {
    let mut headers = rsip::Headers::default();
    for h in req.headers.iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(h.clone())
            }
            Header::RecordRoute(_) if (101..300).contains(&code) => headers.push(h.clone()),
            Header::To(to) => {
                let has_tag = to.tag().ok().flatten().is_some();
                match to_tag {
                    Some(tag) if !has_tag && code != 100 => {
                        let tagged = to
                            .clone()
                            .with_tag(rsip::param::Tag::new(tag))
                            .unwrap_or_else(|_| to.clone());
                        headers.push(Header::To(tagged));
                    }
                    _ => headers.push(h.clone()),
                }
            }
            _ => {}
        }
    }
    for h in extra {
        headers.push(h);
    }
    headers.push(Header::Server(rsip::headers::Server::new("Tandem")));
    let body = match body {
        Some((kind, bytes)) => {
            headers.push(Header::ContentType(rsip::headers::ContentType::new(kind)));
            bytes
        }
        None => Vec::new(),
    };
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        body.len().to_string(),
    )));
    let mut out = format!("SIP/2.0 {code} {}\r\n{headers}\r\n", reason(code)).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// RFC 3261 21's reason phrases for the codes Tandem sends.
fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Cuts a TCP byte stream into messages by their Content-Length (RFC 3261 18.3).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether part of a message is waiting for the rest (keep-alive CRLFs aside).
    pub fn pending(&self) -> bool {
        self.buf.iter().any(|b| !matches!(b, b'\r' | b'\n'))
    }

    /// The next whole message, `None` until one has arrived. An error means the stream cannot
    /// be followed any further and the connection is to be closed.
    pub fn next_message(&mut self) -> Option<Result<Vec<u8>, ParseError>> {
        // Keep-alive CRLFs between messages (RFC 5626 4.4.1).
        let skip = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        self.buf.drain(..skip);
        if self.buf.is_empty() {
            return None;
        }
        let Some(end) = header_end(&self.buf) else {
            return (self.buf.len() > MAX_MESSAGE).then_some(Err(ParseError::TooLarge));
        };
        let head = match std::str::from_utf8(&self.buf[..end]) {
            Ok(h) => h,
            Err(_) => return Some(Err(ParseError::Garbage("headers are not UTF-8".into()))),
        };
        let length = match content_length(head) {
            Ok(Some(n)) => n,
            Ok(None) => return Some(Err(ParseError::BadHeader("Content-Length"))),
            Err(e) => return Some(Err(e)),
        };
        let total = end.saturating_add(length);
        if total > MAX_MESSAGE {
            return Some(Err(ParseError::TooLarge));
        }
        if self.buf.len() < total {
            return None;
        }
        let rest = self.buf.split_off(total);
        Some(Ok(std::mem::replace(&mut self.buf, rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:123456789@tandem.test SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:123456789@tandem.test>\r\n\
        From: \"Dave Phone\" <sip:dave@10.0.0.1>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@10.0.0.1\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:dave@10.0.0.1>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn reads_an_invite_and_its_keys() {
        let SipMessage::Request(r) = parse(INVITE.as_bytes(), false).unwrap() else {
            panic!("a request")
        };
        let k = RequestKey::of(&r).unwrap();
        assert_eq!(k.method, Method::Invite);
        assert_eq!(k.branch, "z9hG4bK776asdhds");
        assert_eq!(k.call_id, "a84b4c76e66710@10.0.0.1");
        assert_eq!(k.from_tag.as_deref(), Some("1928301774"));
        assert_eq!(k.to_tag, None);
        assert_eq!(k.cseq, 314159);
        assert_eq!(dialled(&r).as_deref(), Some("123456789"));
        assert_eq!(caller_name(&r), "Dave Phone");
        assert_eq!(r.body, b"v=0\n");
    }

    #[test]
    fn compact_headers_are_understood() {
        let compact = INVITE
            .replace("Via:", "v:")
            .replace("To:", "t:")
            .replace("From:", "f:")
            .replace("Call-ID:", "i:")
            .replace("Content-Length:", "l:");
        assert!(parse(compact.as_bytes(), false).is_ok());
    }

    #[test]
    fn missing_headers_and_bad_lengths_are_refused() {
        let no_call_id = INVITE.replace("Call-ID: a84b4c76e66710@10.0.0.1\r\n", "");
        assert_eq!(
            parse(no_call_id.as_bytes(), false),
            Err(ParseError::BadHeader("Call-ID"))
        );
        let no_via = INVITE.replace(
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n",
            "",
        );
        assert!(parse(no_via.as_bytes(), false).is_err());
        let long = INVITE.replace("Content-Length: 4", "Content-Length: 400");
        assert_eq!(
            parse(long.as_bytes(), false),
            Err(ParseError::BadContentLength)
        );
        let nan = INVITE.replace("Content-Length: 4", "Content-Length: four");
        assert_eq!(
            parse(nan.as_bytes(), false),
            Err(ParseError::BadContentLength)
        );
        let mismatch = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
        assert_eq!(
            parse(mismatch.as_bytes(), false),
            Err(ParseError::CseqMismatch)
        );
        let mut huge = INVITE.replace("Content-Length: 4", "X-Pad: a").into_bytes();
        huge.resize(MAX_MESSAGE + 10, b'a');
        assert_eq!(parse(&huge, false), Err(ParseError::TooLarge));
        assert!(parse(b"\x00\x01garbage", false).is_err());
    }

    #[test]
    fn a_longer_datagram_body_is_cut_to_content_length() {
        let extra = format!("{INVITE}trailing");
        let SipMessage::Request(r) = parse(extra.as_bytes(), false).unwrap() else {
            panic!("a request")
        };
        assert_eq!(r.body, b"v=0\n");
    }

    #[test]
    fn the_stream_framer_cuts_at_content_length() {
        let mut f = StreamFramer::default();
        let two = format!("\r\n{INVITE}{INVITE}");
        let (a, b) = two.as_bytes().split_at(100);
        f.push(a);
        assert_eq!(f.next_message(), None);
        f.push(b);
        assert_eq!(f.next_message().unwrap().unwrap(), INVITE.as_bytes());
        assert_eq!(f.next_message().unwrap().unwrap(), INVITE.as_bytes());
        assert_eq!(f.next_message(), None);

        let mut f = StreamFramer::default();
        f.push(&vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(f.next_message(), Some(Err(ParseError::TooLarge)));
    }

    #[test]
    fn a_response_copies_the_request_and_tags_to() {
        let SipMessage::Request(r) = parse(INVITE.as_bytes(), false).unwrap() else {
            panic!("a request")
        };
        let resp = String::from_utf8(response(&r, 404, Some("abc"), vec![], None)).unwrap();
        assert!(resp.starts_with("SIP/2.0 404 Not Found\r\n"), "{resp}");
        assert!(resp.contains("branch=z9hG4bK776asdhds"));
        assert!(resp.contains("tag=abc"), "{resp}");
        assert!(resp.contains("CSeq: 314159 INVITE"));
        let back = parse(resp.as_bytes(), false).unwrap();
        assert!(back.is_response());
    }
}
