//! Header names for the `HTTP_*` CGI variables browsers and proxies send most, looked up by
//! the variable's suffix (`ACCEPT_ENCODING` gives `accept-encoding`): a constant instead of
//! mapping `_` to `-`, lower-casing, parsing and, for a name `http` does not know, allocating.
//! Any other suffix takes the general path in `parse_request`, with the same result.

use http::HeaderName;

macro_rules! common_names {
    ($($suffix:literal => $name:literal,)*) => {
        /// The header name for the `HTTP_*` suffix `suffix`, when it is a common one.
        pub(crate) fn common(suffix: &[u8]) -> Option<HeaderName> {
            match suffix {
                $($suffix => Some(const { HeaderName::from_static($name) }),)*
                _ => None,
            }
        }

        /// Every suffix [`common`] knows, with its name (for the tests).
        #[cfg(test)]
        const TABLE: &[(&[u8], &str)] = &[$(($suffix, $name)),*];
    };
}

common_names! {
    b"HOST" => "host",
    b"USER_AGENT" => "user-agent",
    b"ACCEPT" => "accept",
    b"ACCEPT_LANGUAGE" => "accept-language",
    b"ACCEPT_ENCODING" => "accept-encoding",
    b"ACCEPT_CHARSET" => "accept-charset",
    b"REFERER" => "referer",
    b"COOKIE" => "cookie",
    b"CONNECTION" => "connection",
    b"UPGRADE_INSECURE_REQUESTS" => "upgrade-insecure-requests",
    b"CACHE_CONTROL" => "cache-control",
    b"PRAGMA" => "pragma",
    b"ORIGIN" => "origin",
    b"AUTHORIZATION" => "authorization",
    b"IF_MODIFIED_SINCE" => "if-modified-since",
    b"IF_NONE_MATCH" => "if-none-match",
    b"IF_MATCH" => "if-match",
    b"IF_UNMODIFIED_SINCE" => "if-unmodified-since",
    b"IF_RANGE" => "if-range",
    b"RANGE" => "range",
    b"DNT" => "dnt",
    b"TE" => "te",
    b"VIA" => "via",
    b"FORWARDED" => "forwarded",
    b"UPGRADE" => "upgrade",
    b"EXPECT" => "expect",
    b"PRIORITY" => "priority",
    b"X_FORWARDED_FOR" => "x-forwarded-for",
    b"X_FORWARDED_PROTO" => "x-forwarded-proto",
    b"X_FORWARDED_HOST" => "x-forwarded-host",
    b"X_REAL_IP" => "x-real-ip",
    b"X_REQUESTED_WITH" => "x-requested-with",
    b"SEC_FETCH_DEST" => "sec-fetch-dest",
    b"SEC_FETCH_MODE" => "sec-fetch-mode",
    b"SEC_FETCH_SITE" => "sec-fetch-site",
    b"SEC_FETCH_USER" => "sec-fetch-user",
    b"SEC_CH_UA" => "sec-ch-ua",
    b"SEC_CH_UA_MOBILE" => "sec-ch-ua-mobile",
    b"SEC_CH_UA_PLATFORM" => "sec-ch-ua-platform",
    b"ACCESS_CONTROL_REQUEST_METHOD" => "access-control-request-method",
    b"ACCESS_CONTROL_REQUEST_HEADERS" => "access-control-request-headers",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_what_the_general_path_makes() {
        for (suffix, name) in TABLE {
            let general: Vec<u8> = suffix
                .iter()
                .map(|&b| {
                    if b == b'_' {
                        b'-'
                    } else {
                        b.to_ascii_lowercase()
                    }
                })
                .collect();
            assert_eq!(general, name.as_bytes());
            let got = common(suffix).unwrap();
            assert_eq!(got, HeaderName::from_bytes(&general).unwrap());
            assert_eq!(got.as_str(), *name);
        }
    }

    #[test]
    fn others_are_left_to_the_general_path() {
        assert_eq!(common(b"X_CUSTOM"), None);
        assert_eq!(common(b"host"), None);
        assert_eq!(common(b""), None);
    }
}
