//! Ownership proofs, `/proofs/<host>.json`: a service (a crawler, a hosting service) hands out a
//! nonce, the archive owner writes it here with a signed entry, and the service reads it back to
//! learn that whoever holds the archive key asked for the account.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::error::{shown, ModelError};
use super::file::{object, Fields};
use super::limits::{MAX_SEGMENT_BYTES, MAX_URL_BYTES};
use super::path::FilePath;
use super::timestamp::Timestamp;

/// Longest `host[:port]`, in bytes, so that `<host>.json` fits in one path segment.
const MAX_HOST_BYTES: usize = MAX_SEGMENT_BYTES - ".json".len();

/// `{"service": "https://crawler.example/", "nonce": "<32 hex>", "createdAt": "…"}`, stored at
/// `/proofs/<host>.json` where `<host>` is [`ServiceUrl::host`] of `service`, so an archive holds
/// one proof per service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipProof {
    /// The service the proof is for.
    pub service: ServiceUrl,
    /// The service's 128-bit challenge, 32 hex characters in JSON.
    pub nonce: [u8; 16],
    /// `createdAt`.
    pub created_at: Timestamp,
}

impl OwnershipProof {
    /// Where this proof lives.
    pub fn path(&self) -> FilePath {
        FilePath::from_trusted(format!("/proofs/{}.json", self.service.host()))
    }

    pub(crate) fn from_fields(fields: &Fields<'_>) -> Result<OwnershipProof, ModelError> {
        Ok(OwnershipProof {
            service: fields.parse("service")?,
            nonce: fields.hex("nonce")?,
            created_at: fields.parse("createdAt")?,
        })
    }

    pub(crate) fn to_object(&self) -> Map<String, Value> {
        object([
            ("service", Some(self.service.as_str().into())),
            ("nonce", Some(hex::encode(self.nonce).into())),
            ("createdAt", Some(self.created_at.to_string().into())),
        ])
    }
}

/// An `https://` URL of a service, in canonical form: `https://host[:port]/path`.
///
/// The host is a DNS name (labels of `a-z 0-9 -`, lowercased) or a dotted IPv4 address, with an
/// optional port (the default 443 is dropped); together at most 123 bytes. The URL is printable
/// ASCII, at most 512 bytes, with no user, query or fragment; an empty path becomes `/`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServiceUrl {
    url: String,
    host_end: usize,
}

impl ServiceUrl {
    /// The canonical URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// `host` or `host:port`, the name of the service's proof file.
    pub fn host(&self) -> &str {
        &self.url["https://".len()..self.host_end]
    }
}

impl FromStr for ServiceUrl {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<ServiceUrl, ModelError> {
        let refuse = |reason: String| ModelError::InvalidServiceUrl {
            value: shown(s),
            reason,
        };
        if s.len() > MAX_URL_BYTES {
            return Err(refuse(format!(
                "it is {} bytes; the limit is {MAX_URL_BYTES}",
                s.len()
            )));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(refuse(
                "it may hold only printable ASCII characters, without spaces".to_owned(),
            ));
        }
        let Some(rest) = s.strip_prefix("https://") else {
            return Err(refuse("it must start with https://".to_owned()));
        };
        if rest.contains(['?', '#']) {
            return Err(refuse("queries and fragments are not allowed".to_owned()));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(refuse("user names are not allowed".to_owned()));
        }
        let host = canonical_host(authority).map_err(refuse)?;
        let path = if path.is_empty() { "/" } else { path };
        let url = format!("https://{host}{path}");
        Ok(ServiceUrl {
            host_end: "https://".len() + host.len(),
            url,
        })
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceUrl({})", self.url)
    }
}

/// The canonical form of `host[:port]`, or why it is not one.
pub(crate) fn canonical_host(authority: &str) -> Result<String, String> {
    if authority.starts_with('[') {
        return Err("IPv6 addresses are not supported; use a host name".to_owned());
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    if host.len() > 253 {
        return Err("the host is longer than 253 characters".to_owned());
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each part of the host between dots is 1 to 63 characters".to_owned());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("the host may hold only letters, digits, - and dots".to_owned());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("no part of the host may start or end with -".to_owned());
        }
    }
    let canonical = match port {
        None => host,
        Some(port) => {
            let valid = !port.is_empty()
                && !port.starts_with('0')
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|n| n <= 65_535);
            if !valid {
                return Err("the port must be a number from 1 to 65535".to_owned());
            }
            if port == "443" {
                host
            } else {
                format!("{host}:{port}")
            }
        }
    };
    if canonical.len() > MAX_HOST_BYTES {
        return Err(format!(
            "host and port are {} bytes; the limit is {MAX_HOST_BYTES}",
            canonical.len()
        ));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, &str), &str>) {
        match (input.parse::<ServiceUrl>(), expected) {
            (Ok(url), Ok((want, host))) => {
                assert_eq!(url.as_str(), want);
                assert_eq!(url.host(), host);
                assert_eq!(url.as_str().parse::<ServiceUrl>().unwrap(), url);
            }
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn canonical_service_urls() {
        check(
            "https://crawler.example/",
            Ok(("https://crawler.example/", "crawler.example")),
        );
        check(
            "https://crawler.example",
            Ok(("https://crawler.example/", "crawler.example")),
        );
        check(
            "https://Crawler.EXAMPLE:443/a/b",
            Ok(("https://crawler.example/a/b", "crawler.example")),
        );
        check(
            "https://localhost:8080/x",
            Ok(("https://localhost:8080/x", "localhost:8080")),
        );
        check(
            "https://127.0.0.1:3000",
            Ok(("https://127.0.0.1:3000/", "127.0.0.1:3000")),
        );
        check(
            "https://xn--bcher-kva.example/",
            Ok(("https://xn--bcher-kva.example/", "xn--bcher-kva.example")),
        );
    }

    #[test]
    fn refuses_other_urls() {
        check("http://crawler.example/", Err("must start with https://"));
        check("HTTPS://crawler.example/", Err("must start with https://"));
        check("https://", Err("the host is empty"));
        check("https://user@crawler.example/", Err("user names"));
        check("https://crawler.example/?a=1", Err("queries and fragments"));
        check("https://crawler.example/#x", Err("queries and fragments"));
        check("https://crawler.example:0/", Err("port must be a number"));
        check(
            "https://crawler.example:65536/",
            Err("port must be a number"),
        );
        check(
            "https://crawler.example:08080/",
            Err("port must be a number"),
        );
        check("https://crawler.example:/", Err("port must be a number"));
        check("https://a:1:2/", Err("port must be a number"));
        check("https://[::1]:8080/", Err("IPv6"));
        check("https://-bad.example/", Err("start or end with -"));
        check("https://a..b/", Err("1 to 63 characters"));
        check("https://a_b.example/", Err("only letters, digits"));
        check("https://bücher.example/", Err("printable ASCII"));
        check("https://crawler.example/a b", Err("printable ASCII"));
        check("https://crawler.example/\u{202e}", Err("printable ASCII"));
        check(
            &format!(
                "https://{}.example/",
                "a".repeat(63) + "." + &"b".repeat(63)
            ),
            Err("the limit is 123"),
        );
        check(
            &format!("https://x/{}", "a".repeat(600)),
            Err("the limit is 512"),
        );
    }
}
