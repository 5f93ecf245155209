//! Header names for the `HTTP_*` CGI variables browsers and proxies send most, looked up by
//! the variable's suffix (`ACCEPT_ENCODING` gives `accept-encoding`): a constant instead of
//! mapping `_` to `-`, lower-casing, parsing and, for a name `http` does not know, allocating.
//! Any other suffix takes the general path in `parse_request`, with the same result.

use http::HeaderName;

use super::name_key::NameKey;

macro_rules! common_names {
    ($($suffix:ident => $name:literal,)*) => {
        /// The header name for the `HTTP_*` suffix `suffix`, when it is a common one.
        pub(crate) fn common(suffix: &[u8]) -> Option<HeaderName> {
            // Each row's identifier is its suffix; matching keys is a switch on integers.
            $(#[allow(non_upper_case_globals)]
            const $suffix: NameKey = NameKey::of(stringify!($suffix).as_bytes());)*
            let key = NameKey::of(suffix);
            let (known, name) = match key {
                $($suffix => (
                    stringify!($suffix).as_bytes(),
                    const { HeaderName::from_static($name) },
                ),)*
                _ => return None,
            };
            key.is(suffix, known).then_some(name)
        }

        /// Every suffix [`common`] knows, with its name (for the tests).
        #[cfg(test)]
        const TABLE: &[(&[u8], &str)] = &[$((stringify!($suffix).as_bytes(), $name)),*];
    };
}

common_names! {
    HOST => "host",
    USER_AGENT => "user-agent",
    ACCEPT => "accept",
    ACCEPT_LANGUAGE => "accept-language",
    ACCEPT_ENCODING => "accept-encoding",
    ACCEPT_CHARSET => "accept-charset",
    REFERER => "referer",
    COOKIE => "cookie",
    CONNECTION => "connection",
    UPGRADE_INSECURE_REQUESTS => "upgrade-insecure-requests",
    CACHE_CONTROL => "cache-control",
    PRAGMA => "pragma",
    ORIGIN => "origin",
    AUTHORIZATION => "authorization",
    IF_MODIFIED_SINCE => "if-modified-since",
    IF_NONE_MATCH => "if-none-match",
    IF_MATCH => "if-match",
    IF_UNMODIFIED_SINCE => "if-unmodified-since",
    IF_RANGE => "if-range",
    RANGE => "range",
    DNT => "dnt",
    TE => "te",
    VIA => "via",
    FORWARDED => "forwarded",
    UPGRADE => "upgrade",
    EXPECT => "expect",
    PRIORITY => "priority",
    X_FORWARDED_FOR => "x-forwarded-for",
    X_FORWARDED_PROTO => "x-forwarded-proto",
    X_FORWARDED_HOST => "x-forwarded-host",
    X_REAL_IP => "x-real-ip",
    X_REQUESTED_WITH => "x-requested-with",
    SEC_FETCH_DEST => "sec-fetch-dest",
    SEC_FETCH_MODE => "sec-fetch-mode",
    SEC_FETCH_SITE => "sec-fetch-site",
    SEC_FETCH_USER => "sec-fetch-user",
    SEC_CH_UA => "sec-ch-ua",
    SEC_CH_UA_MOBILE => "sec-ch-ua-mobile",
    SEC_CH_UA_PLATFORM => "sec-ch-ua-platform",
    ACCESS_CONTROL_REQUEST_METHOD => "access-control-request-method",
    ACCESS_CONTROL_REQUEST_HEADERS => "access-control-request-headers",
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
        // Same length and ends as a known suffix, a different middle.
        assert_eq!(common(b"UPGRADE_XXXXXXXX_REQUESTS"), None);
        assert_eq!(common(b"ACCESS_CONTROL_XXXXXST_METHOD"), None);
    }
}
