//! AMP's constraints on request members (botocore's `amp` model: lengths,
//! patterns, ranges), shared by every operation.

use std::collections::BTreeMap;

use crate::error::{Error, FieldError, Result};

/// Most tags a resource may have.
pub(crate) const MAX_TAGS: usize = 50;
/// Longest alias, characters.
const MAX_ALIAS_CHARS: usize = 100;
/// Most workspaces one `ListWorkspaces` page holds, and the default.
pub(crate) const MAX_RESULTS: usize = 1000;
/// See [`MAX_RESULTS`].
pub(crate) const DEFAULT_MAX_RESULTS: usize = 100;

/// Collects the bad fields of one request.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<FieldError>);

impl Fields {
    pub(crate) fn bad(&mut self, name: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(name, message));
    }

    /// `Ok` when no field was bad, else one `ValidationException` naming them all.
    pub(crate) fn finish(self) -> Result<()> {
        match self.0.first() {
            None => Ok(()),
            Some(first) => Err(Error::Validation { message: first.message.clone(), fields: self.0 }),
        }
    }

    /// A required base64 blob member holding UTF-8 text (`what` names the
    /// text in messages); `""` when it is bad.
    pub(crate) fn base64_text(&mut self, field: &str, data: Option<&str>, what: &str) -> String {
        use base64::Engine as _;
        let Some(data) = data else {
            self.bad(field, "Member must not be null");
            return String::new();
        };
        match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
            Err(e) => {
                self.bad(field, format!("{field} is not valid base64: {e}"));
                String::new()
            }
            Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| {
                self.bad(field, format!("{what} is not UTF-8"));
                String::new()
            }),
        }
    }

    /// An alias: 1–100 characters (after trimming, as AMP stores it).
    pub(crate) fn alias(&mut self, alias: Option<&str>) -> Option<String> {
        let alias = alias.map(|a| a.trim().to_owned());
        if let Some(a) = &alias
            && (a.is_empty() || a.chars().count() > MAX_ALIAS_CHARS)
        {
            self.bad("alias", "Member must have length between 1 and 100");
        }
        alias
    }

    /// An idempotency token: 1–64 printable ASCII characters.
    pub(crate) fn client_token(&mut self, token: Option<&str>) {
        if let Some(t) = token
            && (t.is_empty() || t.len() > 64 || !t.bytes().all(|b| (b'!'..=b'~').contains(&b)))
        {
            self.bad("clientToken", "Member must have length between 1 and 64 and match [!-~]+");
        }
    }

    /// A tag map: at most 50 tags, keys 1–128 characters not starting with
    /// `aws:`, values up to 256, both of AMP's character set.
    pub(crate) fn tags(&mut self, tags: &BTreeMap<String, String>) {
        if tags.len() > MAX_TAGS {
            self.bad("tags", format!("Member must have at most {MAX_TAGS} entries"));
        }
        for (k, v) in tags {
            self.tag_key(k);
            if v.chars().count() > 256 || !v.chars().all(tag_char) {
                self.bad("tags", format!("invalid value of tag {k:?}: up to 256 letters, digits, spaces or _.:/=+-@"));
            }
        }
    }

    /// A tag key (also `UntagResource`'s `tagKeys`).
    pub(crate) fn tag_key(&mut self, k: &str) {
        if k.is_empty() || k.chars().count() > 128 || k.starts_with("aws:") || !k.chars().all(tag_char) {
            self.bad(
                "tags",
                format!("invalid tag key {k:?}: 1–128 letters, digits, spaces or _.:/=+-@, not starting with aws:"),
            );
        }
    }
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named_once() {
        let mut f = Fields::default();
        assert_eq!(f.alias(Some("  prod  ")).as_deref(), Some("prod"));
        f.client_token(Some("ok-token"));
        f.tags(&BTreeMap::from([("team".into(), "a b".into()), ("env:x/y".into(), "v=1+2@z".into())]));
        assert!(f.finish().is_ok());

        let mut f = Fields::default();
        f.alias(Some(" "));
        f.client_token(Some("has space"));
        f.tags(&BTreeMap::from([("aws:x".into(), "v".into()), ("k".into(), "semi;colon".into())]));
        let Err(Error::Validation { fields, .. }) = f.finish() else { panic!("accepted") };
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["alias", "clientToken", "tags", "tags"]);

        let mut f = Fields::default();
        f.tags(&(0..51).map(|i| (format!("k{i}"), String::new())).collect());
        assert!(f.finish().is_err());
    }
}
