//! Response-body checks: what the demo application's `/stream` and `/echo` must send back,
//! checked incrementally as bytes arrive (nothing is buffered).

use bytes::Bytes;

/// The body a response must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `GET /stream?chunks=N&size=S`: N chunks of S bytes, chunk k filled with `b'a' + k % 26`.
    Stream {
        /// Bytes per chunk (S).
        chunk_size: u64,
        /// N * S.
        total: u64,
        /// Check every byte, not only the length.
        bytes: bool,
    },
    /// `POST /echo`: the request body back.
    Echo {
        /// The request body.
        body: Bytes,
        /// Check every byte, not only the length.
        bytes: bool,
    },
}

impl Expect {
    /// The expectation for a request to the demo application, if its path has one.
    /// `bytes` checks content too; otherwise only the length is checked.
    pub fn for_request(method: &str, uri: &str, body: &Bytes, bytes: bool) -> Option<Self> {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        match (method, path) {
            ("GET", "/stream") => {
                let param = |name: &str| {
                    query
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .find(|(k, _)| *k == name)
                        .and_then(|(_, v)| v.parse::<u64>().ok())
                };
                let (chunks, size) = (param("chunks")?, param("size")?);
                Some(Self::Stream {
                    chunk_size: size,
                    total: chunks.checked_mul(size)?,
                    bytes,
                })
            }
            ("POST", "/echo") => Some(Self::Echo {
                body: body.clone(),
                bytes,
            }),
            _ => None,
        }
    }

    /// The expected body length.
    pub fn len(&self) -> u64 {
        match self {
            Self::Stream { total, .. } => *total,
            Self::Echo { body, .. } => body.len() as u64,
        }
    }

    /// Whether the expected body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `data`, found at body offset `offset`, is what is expected there (content is
    /// only compared when the expectation checks bytes; bytes past the end never match).
    pub fn matches(&self, offset: u64, data: &[u8]) -> bool {
        if offset + data.len() as u64 > self.len() {
            return false;
        }
        match self {
            Self::Stream {
                chunk_size,
                bytes: true,
                ..
            } => {
                let mut at = offset;
                let mut rest = data;
                while !rest.is_empty() {
                    let chunk = at / chunk_size;
                    let left_in_chunk = chunk_size - at % chunk_size;
                    let n = rest
                        .len()
                        .min(usize::try_from(left_in_chunk).unwrap_or(usize::MAX));
                    // chunk % 26 < 26, so the cast cannot truncate.
                    let fill = b'a' + (chunk % 26) as u8;
                    if rest[..n].iter().any(|&b| b != fill) {
                        return false;
                    }
                    rest = &rest[n..];
                    at += n as u64;
                }
                true
            }
            Self::Echo { body, bytes: true } => {
                // The bound check above keeps the range inside the body.
                let start = offset as usize;
                body[start..start + data.len()] == *data
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_pattern() {
        let e =
            Expect::for_request("GET", "/stream?chunks=30&size=3", &Bytes::new(), true).unwrap();
        assert_eq!(e.len(), 90);
        let mut body = Vec::new();
        for k in 0..30u8 {
            body.extend_from_slice(&[b'a' + k % 26; 3]);
        }
        assert!(e.matches(0, &body));
        assert!(e.matches(4, &body[4..50]));
        assert!(!e.matches(4, &body[5..50]));
        assert!(!e.matches(0, &[body.as_slice(), b"x"].concat()));
        let len_only =
            Expect::for_request("GET", "/stream?size=3&chunks=30", &Bytes::new(), false).unwrap();
        assert!(len_only.matches(0, &[0u8; 90]));
        assert!(Expect::for_request("GET", "/stream?chunks=3", &Bytes::new(), true).is_none());
    }

    #[test]
    fn echo() {
        let body = Bytes::from_static(b"hello echo");
        let e = Expect::for_request("POST", "/echo", &body, true).unwrap();
        assert!(e.matches(0, b"hello"));
        assert!(e.matches(6, b"echo"));
        assert!(!e.matches(6, b"ECHO"));
        assert!(Expect::for_request("GET", "/echo", &body, true).is_none());
    }
}
