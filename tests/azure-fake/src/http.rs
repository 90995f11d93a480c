//! The request and reply types that every handler of the fake works on, so that
//! Graph `$batch` can run its inner requests through the same handlers.

use serde_json::{Value, json};

/// One HTTP request, as the handlers see it.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    /// Upper-case method, such as `PUT`.
    pub method: String,
    /// Raw path without the query string, still percent-encoded.
    pub path: String,
    /// Raw query string without the leading `?`.
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns the decoded value of a query parameter; names match case-insensitively.
    pub fn query_param(&self, name: &str) -> Option<String> {
        parse_pairs(&self.query)
            .into_iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Parses the body as JSON. An empty body is `Null`.
    pub fn json_body(&self) -> Result<Value, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
            .map_err(|error| format!("the request body is not valid JSON: {error}"))
    }

    /// Splits the path into percent-decoded segments, without empty ones.
    pub fn segments(&self) -> Vec<String> {
        split_path(&self.path)
    }
}

pub(crate) fn split_path(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode(segment, false))
        .collect()
}

/// Parses `a=1&b=2` (a query string or a form body) into decoded pairs.
pub(crate) fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true), percent_decode(value, true))
        })
        .collect()
}

/// Decodes `%XX` escapes, and `+` as a space when `plus_is_space` is set
/// (form bodies and query strings). Invalid escapes are kept as written.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' && index + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
            if let Some(value) = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                decoded.push(value);
                index += 3;
                continue;
            }
        }
        if byte == b'+' && plus_is_space {
            decoded.push(b' ');
        } else {
            decoded.push(byte);
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[derive(Debug, Clone)]
pub(crate) enum ReplyBody {
    Json(Value),
    Text(String),
    Empty,
}

/// One HTTP response, before it becomes an axum response or a `$batch` entry.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        }
    }

    pub fn text(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Text(body),
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Empty,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// Builds an ARM error reply: `{"error":{"code","message"}}`.
pub(crate) fn arm_error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::json(
        status,
        json!({ "error": { "code": code, "message": message.into() } }),
    )
}

/// Builds a Microsoft Graph error reply, with the `innerError` that Graph adds.
pub(crate) fn graph_error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    Reply::json(
        status,
        json!({
            "error": {
                "code": code,
                "message": message.into(),
                "innerError": { "date": now, "request-id": request_id, "client-request-id": request_id }
            }
        }),
    )
}
