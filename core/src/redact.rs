//! Credentials taken out of the texts of the exchange's errors before they are logged, kept in
//! events or raised: some venues sign in the request's query string (HTX puts `AccessKeyId`
//! and `Signature` there) and ccxt's error texts quote the request URL, and a venue's answer
//! may echo what was sent. A value whose name says it is a credential is replaced by `***`:
//!
//! - `name=value` (a URL's query, a form): the value ends at `&`, white space, a quote or a
//!   closing bracket;
//! - `"name": "value"` or `'name': 'value'` (JSON, a Python dict's repr) and `name: value` (a
//!   header line): a quoted value ends at its closing quote, an unquoted one as above.
//!
//! Spaces around `=` and `:` are allowed, a JSON text escaped inside another (`{\"apiKey\":
//! \"...\"}`) is read as JSON, an escaped quote does not end a quoted value, and a name inside
//! brackets (`params[apiKey]=`, `params%5BapiKey%5D=`) is the bracketed one. An `Authorization`
//! value is hidden to the end of its line (`Bearer <token>`, `<scheme> id=...,sig=...`).
//!
//! A name is a credential's when, lower-cased without `-`, `_` and `.`, it contains `secret`,
//! `passphrase`, `password`, `passwd`, `credential`, `authorization` or `accesskey`, or ends
//! with `key` (`apiKey`, `privateKey`, `X-MBX-APIKEY`), `sign`, `signature`, `sig` or `token`.
//! Over-matching only hides a value from a log line; under-matching would leak it, so the list
//! errs that way (`Invalid token: ...` in a message loses its next word).
//!
//! Written here rather than with a regular-expression crate: one small scanner with its
//! properties tested, no new dependency in the wheel.

use std::borrow::Cow;

/// Name fragments that make a name a credential's wherever they stand in it.
const SECRET_NAME_PARTS: [&str; 7] = [
    "secret",
    "passphrase",
    "password",
    "passwd",
    "credential",
    "authorization",
    "accesskey",
];

/// Name endings that make a name a credential's.
const SECRET_NAME_ENDS: [&str; 5] = ["key", "sign", "signature", "sig", "token"];

/// What replaces a credential's value.
pub const REDACTED: &str = "***";

/// Whether `name` is a credential's name (see the module docs); a bracketed name
/// (`params[apiKey]`, `params%5BapiKey%5D`) is judged by each of its parts.
pub fn is_secret_name(name: &str) -> bool {
    let unbracketed = name
        .replace("%5B", "[")
        .replace("%5D", "]")
        .replace("%5b", "[")
        .replace("%5d", "]");
    unbracketed.split(['[', ']']).any(|part| {
        let folded: String = part
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | '.'))
            .flat_map(char::to_lowercase)
            .collect();
        !folded.is_empty()
            && (SECRET_NAME_PARTS.iter().any(|p| folded.contains(p))
                || SECRET_NAME_ENDS.iter().any(|e| folded.ends_with(e)))
    })
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%' | b'[' | b']')
}

/// Where an unquoted value ends.
fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'&' | b'"' | b'\'' | b',' | b';' | b')' | b'}' | b']' | b'>' | b'<'
        )
}

/// The name that ends right before byte `end` of `text` (spaces, a closing quote and an
/// escaping backslash before it skipped), if any.
fn name_before(text: &[u8], end: usize) -> Option<(usize, usize)> {
    let mut stop = end;
    while stop > 0 && matches!(text[stop - 1], b' ' | b'\t') {
        stop -= 1;
    }
    if stop > 0 && matches!(text[stop - 1], b'"' | b'\'') {
        stop -= 1;
        if stop > 0 && text[stop - 1] == b'\\' {
            stop -= 1;
        }
    }
    let mut start = stop;
    while start > 0 && is_name_byte(text[start - 1]) {
        start -= 1;
    }
    (start < stop).then_some((start, stop))
}

/// The span of the value that starts at byte `from` (after `=` or `:`, spaces skipped); a
/// quoted value (also one quoted `\"...\"` inside an escaped JSON text) is its inside, and an
/// escaped quote does not end it; with `to_line_end`, an unquoted value runs to the end of its
/// line.
fn value_at(text: &[u8], from: usize, to_line_end: bool) -> (usize, usize) {
    let mut start = from;
    while start < text.len() && matches!(text[start], b' ' | b'\t') {
        start += 1;
    }
    let escaped_quote =
        start + 1 < text.len() && text[start] == b'\\' && matches!(text[start + 1], b'"' | b'\'');
    if escaped_quote || (start < text.len() && matches!(text[start], b'"' | b'\'')) {
        let (quote, inside) = if escaped_quote {
            (text[start + 1], start + 2)
        } else {
            (text[start], start + 1)
        };
        let mut i = inside;
        while i < text.len() {
            if text[i] == quote {
                let backslashes = text[inside..i]
                    .iter()
                    .rev()
                    .take_while(|&&b| b == b'\\')
                    .count();
                if escaped_quote {
                    // `\"` closes the value; the backslash is not part of it.
                    if backslashes % 2 == 1 {
                        return (inside, i - 1);
                    }
                } else if backslashes % 2 == 0 {
                    return (inside, i);
                }
            }
            i += 1;
        }
        return (inside, text.len());
    }
    let end = text[start..]
        .iter()
        .position(|&b| {
            if to_line_end {
                matches!(b, b'\n' | b'\r')
            } else {
                ends_value(b)
            }
        })
        .map_or(text.len(), |i| start + i);
    (start, end)
}

/// `text` with every credential's value replaced by [`REDACTED`] (see the module docs);
/// borrowed unchanged when there is none.
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'=' && b != b':' {
            i += 1;
            continue;
        }
        // `name_before` stops at ASCII bytes, so the span is on character boundaries.
        let name = name_before(bytes, i).map(|(start, stop)| &text[start..stop]);
        if !name.is_some_and(is_secret_name) {
            i += 1;
            continue;
        }
        let whole_line =
            b == b':' && name.is_some_and(|n| n.to_ascii_lowercase().contains("authorization"));
        let (start, end) = value_at(bytes, i + 1, whole_line);
        if start < end {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            // Every bound is next to an ASCII byte (or the text's end): character boundaries.
            o.push_str(&text[copied..start]);
            o.push_str(REDACTED);
            copied = end;
        }
        i = end.max(i + 1);
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_signed_query_loses_its_key_and_signature() {
        let text = "htx GET https://api.hbdm.com/linear-swap-api/v1/swap_cross_position_info?\
                    AccessKeyId=APIKEYzz1111&SignatureMethod=HmacSHA256&SignatureVersion=2&\
                    Timestamp=2026-12-07T01%3A00%3A00&Signature=abc%2Bdef%3D 503 Service Unavailable";
        assert_eq!(
            redact_secrets(text),
            "htx GET https://api.hbdm.com/linear-swap-api/v1/swap_cross_position_info?\
             AccessKeyId=***&SignatureMethod=HmacSHA256&SignatureVersion=2&\
             Timestamp=2026-12-07T01%3A00%3A00&Signature=*** 503 Service Unavailable"
        );
    }

    #[test]
    fn json_dict_and_header_styles() {
        assert_eq!(
            redact_secrets(r#"{"apiKey": "k1", "symbol": "BTC", "secret":"s1", "n": 3}"#),
            r#"{"apiKey": "***", "symbol": "BTC", "secret":"***", "n": 3}"#
        );
        assert_eq!(
            redact_secrets("{'passphrase': 'p w', 'privateKey': '0xabc'}"),
            "{'passphrase': '***', 'privateKey': '***'}"
        );
        assert_eq!(
            redact_secrets("X-MBX-APIKEY: abc123\nother: keep"),
            "X-MBX-APIKEY: ***\nother: keep"
        );
        assert_eq!(
            redact_secrets("token=a;key=b&keep=c"),
            "token=***;key=***&keep=c"
        );
    }

    #[test]
    fn spaced_escaped_bracketed_and_header_forms() {
        assert_eq!(
            redact_secrets(r#"{\"apiKey\":\"SECRETK\",\"n\":1}"#),
            r#"{\"apiKey\":\"***\",\"n\":1}"#
        );
        assert_eq!(redact_secrets(r#""apiKey" : "K1""#), r#""apiKey" : "***""#);
        assert_eq!(redact_secrets("apiKey = K2&x=1"), "apiKey = ***&x=1");
        assert_eq!(
            redact_secrets("{\"apiKey\":\t\"K3\"}"),
            "{\"apiKey\":\t\"***\"}"
        );
        assert_eq!(
            redact_secrets("params%5BapiKey%5D=K4&a=1"),
            "params%5BapiKey%5D=***&a=1"
        );
        assert_eq!(redact_secrets("params[secret]=K5"), "params[secret]=***");
        assert_eq!(
            redact_secrets(r#"{"secret": "ab\"SECRETTAIL", "n": 1}"#),
            r#"{"secret": "***", "n": 1}"#
        );
        assert_eq!(
            redact_secrets("Authorization: Bearer eyJ.SECRETTOKEN\nHost: x"),
            "Authorization: ***\nHost: x"
        );
        assert_eq!(
            redact_secrets("Authorization: deri-hmac-sha256 id=ID,ts=1,sig=SIG"),
            "Authorization: ***"
        );
        assert_eq!(redact_secrets("ts=1,sig=SIG2"), "ts=1,sig=***");
    }

    #[test]
    fn names_that_only_contain_a_fragment_are_not_credentials() {
        let text = r#"{"signal":"x","designation":"y","tokenId":"T123","keyword":"k"}"#;
        assert!(
            matches!(redact_secrets(text), Cow::Borrowed(_)),
            "{}",
            redact_secrets(text)
        );
    }

    #[test]
    fn texts_without_credentials_are_borrowed_unchanged() {
        for text in [
            "",
            "binance {\"code\":-2019,\"msg\":\"Margin is insufficient.\"}",
            "https://fapi.binance.com/fapi/v2/positionRisk?timestamp=1&recvWindow=5000",
            "a=b c:d ==:: = :",
            "price=1e-05 side=sell clientOrderId=pmrs-1",
        ] {
            assert!(
                matches!(redact_secrets(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn an_empty_or_unterminated_value_is_safe() {
        assert_eq!(redact_secrets("secret="), "secret=");
        assert_eq!(redact_secrets("secret=\"abc"), "secret=\"***");
        assert_eq!(redact_secrets("é secret=ü&x=1"), "é secret=***&x=1");
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "apiKey",
            "AccessKeyId",
            "api_secret",
            "Signature",
            "PASSPHRASE",
            "password",
            "x-api-token",
            "privateKey",
            "key",
            "sig",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        /// A credential written in any supported style, anywhere in any text, never survives;
        /// what surrounds it does.
        #[test]
        fn no_credential_survives(
            before in "[ -~]{0,30}",
            name in name(),
            value in "[A-Za-z0-9+/%]{6,40}",
            style in 0..7usize,
        ) {
            let written = match style {
                0 => format!("{name}={value}"),
                1 => format!("\"{name}\": \"{value}\""),
                2 => format!("'{name}':'{value}'"),
                3 => format!("{name} = {value}"),
                4 => format!("\\\"{name}\\\": \\\"{value}\\\""),
                5 => format!("params%5B{name}%5D={value}"),
                _ => format!("{name}: {value}"),
            };
            let text = format!("{before} {written}&tail=1");
            let redacted = redact_secrets(&text);
            prop_assert!(!redacted.contains(&value), "{redacted}");
            prop_assert!(redacted.ends_with("&tail=1"), "{redacted}");
        }

        /// Nothing panics and nothing grows out of bounds, whatever the text.
        #[test]
        fn any_text_is_handled(text in "\\PC{0,200}") {
            let redacted = redact_secrets(&text);
            prop_assert!(redacted.len() <= text.len() + 3 * text.len());
        }
    }
}
