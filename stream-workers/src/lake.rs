//! Where the lake is: a URL (`file:///…` or `s3://bucket/prefix`) under
//! which each workspace's tables live at `<lake>/<workspaceId>/<table>`, and
//! how to reach it (the object store options of an `s3://` lake).
//!
//! # Object storage
//!
//! Every access to the lake goes through delta-rs' object store (the
//! `object_store` crate): commits, Parquet writes and reads, listings for
//! vacuum and workspace deletion. Only a `file://` lake has a local
//! directory, created before its first table.
//!
//! An `s3://` lake (AWS S3 or any S3-compatible store: MinIO, Ceph, R2,
//! moto…) is reached with the options of [`S3Config`] (`[lake_s3]` in the
//! config file) over the standard AWS environment variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, …), which
//! apply to whatever the file leaves unset.
//!
//! # Safe concurrent commits on S3
//!
//! A Delta commit is the creation of `_delta_log/<version>.json`; two
//! writers racing for one version must not both succeed. delta-rs 1.1
//! (`deltalake-aws` 1.0) writes it with a *conditional put*
//! (`PutMode::Create`, sent by `object_store` as `If-None-Match: *`): the
//! store creates the object only if it does not exist, and answers the
//! loser `412 Precondition Failed`, which delta-rs turns into "version
//! already exists" and resolves by its conflict checker (rebase, or refuse
//! a conflicting transaction such as a second owner's append). No locking
//! provider is involved (delta-rs 1.1 dropped the DynamoDB lock; its
//! `AWS_S3_LOCKING_PROVIDER` is ignored with an error log) and
//! `AWS_S3_ALLOW_UNSAFE_RENAME` changes nothing for commits (it only wraps
//! the store; the commit still is a conditional put). PromLake always sets
//! `aws_conditional_put = etag` (the store must support conditional writes:
//! AWS S3 since 2024, MinIO, R2, moto) and refuses options that would turn
//! it off or pretend a lock, so a store without conditional writes fails
//! loudly instead of corrupting a table.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Once;

use deltalake::{DeltaResult, DeltaTableBuilder};
use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
use crate::tables::TableKind;

/// How to reach an `s3://` lake (`[lake_s3]` in the config file). Every
/// field is optional: what is unset comes from the standard AWS environment
/// variables, then from `object_store`'s and the AWS SDK's defaults
/// (instance or web-identity credentials on AWS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The S3 endpoint of an S3-compatible store, e.g.
    /// `http://minio:9000`. Default: AWS S3 (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The region requests are signed for. Default `AWS_REGION`, else
    /// `us-east-1`.
    pub region: Option<String>,
    /// Access key id. Default `AWS_ACCESS_KEY_ID`, else the AWS SDK's
    /// credential chain (profile, instance role, web identity).
    pub access_key_id: Option<String>,
    /// Secret access key. Default `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials. Default `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
    /// Allow plain `http://` endpoints (a local MinIO, tests). Default
    /// false (or `AWS_ALLOW_HTTP`).
    pub allow_http: bool,
    /// Further `object_store` S3 options passed through, by their
    /// `object_store` names (`aws_virtual_hosted_style_request = "true"`,
    /// `aws_server_side_encryption = "aws:kms"`, …). Options that would
    /// disable safe commits are refused (see the module doc).
    pub options: BTreeMap<String, String>,
}

/// Storage option keys that would make commits unsafe or pretend a lock.
const REFUSED_OPTIONS: [&str; 3] = ["aws_s3_allow_unsafe_rename", "aws_s3_locking_provider", "dynamo_lock_table_name"];

impl S3Config {
    /// The storage options passed to delta-rs for an `s3://` lake.
    fn storage_options(&self) -> std::result::Result<BTreeMap<String, String>, String> {
        let mut options = BTreeMap::new();
        for (key, value) in &self.options {
            let key = key.to_ascii_lowercase();
            if REFUSED_OPTIONS.contains(&key.as_str()) {
                return Err(format!(
                    "lake_s3.options.{key} is not supported: commits are made safe by S3 conditional writes"
                ));
            }
            if matches!(key.as_str(), "aws_conditional_put" | "conditional_put") && value.trim() != "etag" {
                return Err(format!(
                    "lake_s3.options.{key} = {value:?}: only \"etag\" (conditional writes) keeps concurrent commits safe"
                ));
            }
            options.insert(key, value.clone());
        }
        let typed = [
            ("aws_endpoint", &self.endpoint),
            ("aws_region", &self.region),
            ("aws_access_key_id", &self.access_key_id),
            ("aws_secret_access_key", &self.secret_access_key),
            ("aws_session_token", &self.session_token),
        ];
        for (key, value) in typed {
            if let Some(value) = value {
                options.insert(key.to_owned(), value.clone());
            }
        }
        if self.allow_http {
            options.insert("aws_allow_http".into(), "true".into());
        }
        options.insert("aws_conditional_put".into(), "etag".into());
        Ok(options)
    }
}

/// The root of the lake, as a URL ending in `/`, and the object store
/// options to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeLocation {
    root: Url,
    storage_options: BTreeMap<String, String>,
}

impl LakeLocation {
    /// Parses a lake location: a URL (`file:///var/lib/promlake/lake`,
    /// `s3://bucket/prefix`) or a local directory path (made absolute
    /// against the current directory). An `s3://` lake gets the default
    /// [`S3Config`] (everything from the environment); see
    /// [`LakeLocation::with_s3`].
    ///
    /// # Errors
    /// [`Error::InvalidLake`] for an unparsable URL, an unsupported scheme
    /// or an `s3://` URL without a bucket.
    pub fn parse(location: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidLake { location: location.to_owned(), reason };
        let url = if location.contains("://") {
            Url::parse(location).map_err(|e| invalid(e.to_string()))?
        } else {
            return Self::from_path(Path::new(location));
        };
        match url.scheme() {
            "file" => Ok(Self { root: with_trailing_slash(url), storage_options: BTreeMap::new() }),
            "s3" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("an s3:// lake needs a bucket: s3://bucket/prefix".into()));
                }
                let storage_options = S3Config::default().storage_options().map_err(invalid)?;
                Ok(Self { root: with_trailing_slash(url), storage_options })
            }
            other => Err(invalid(format!("scheme {other:?} is not supported (file:// or s3://)"))),
        }
    }

    /// The lake in a local directory.
    ///
    /// # Errors
    /// [`Error::InvalidLake`] when the path cannot be made absolute.
    pub fn from_path(path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidLake { location: path.display().to_string(), reason };
        let abs = std::path::absolute(path).map_err(|e| invalid(e.to_string()))?;
        let url = Url::from_directory_path(&abs).map_err(|()| invalid("not an absolute directory path".into()))?;
        Ok(Self { root: url, storage_options: BTreeMap::new() })
    }

    /// Reaches an `s3://` lake with `config` (ignored for other lakes).
    ///
    /// # Errors
    /// [`Error::InvalidLake`] when an option would disable safe commits.
    pub fn with_s3(mut self, config: &S3Config) -> Result<Self> {
        if self.root.scheme() == "s3" {
            self.storage_options = config
                .storage_options()
                .map_err(|reason| Error::InvalidLake { location: self.root.to_string(), reason })?;
        }
        Ok(self)
    }

    /// The lake's root URL.
    pub fn url(&self) -> &Url {
        &self.root
    }

    /// The object store options given to delta-rs (empty for `file://`).
    pub fn storage_options(&self) -> &BTreeMap<String, String> {
        &self.storage_options
    }

    /// The URL of one table of a workspace, ending in `/`.
    pub fn table_url(&self, workspace_id: &str, table: TableKind) -> Url {
        // Workspace ids are checked (`ws-` + UUID) before they get here; the
        // segments are still pushed one by one so nothing escapes the root.
        let mut url = self.root.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(workspace_id).push(table.name()).push("");
        }
        url
    }

    /// A delta-rs table builder for a table `url` of this lake, with the
    /// lake's storage options.
    pub(crate) fn table_builder(&self, url: &Url) -> DeltaResult<DeltaTableBuilder> {
        register_object_stores();
        let options: HashMap<String, String> =
            self.storage_options.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(DeltaTableBuilder::from_url(url.clone())?.with_storage_options(options))
    }

    /// The local directory of a `file://` URL, to create before a table is;
    /// `None` for object storage (nothing to create).
    pub(crate) fn local_dir(url: &Url) -> Option<std::path::PathBuf> {
        (url.scheme() == "file").then(|| url.to_file_path().ok()).flatten()
    }
}

/// Registers delta-rs' S3 object store and log store for `s3://` URLs.
/// The `deltalake` crate does it in a constructor function, which the
/// linker may drop when nothing else of that crate's own object code is
/// used; registering again is harmless.
fn register_object_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| deltalake::aws::register_handlers(None));
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_urls_nest_under_the_root() {
        let lake = LakeLocation::parse("file:///data/lake").unwrap();
        assert_eq!(lake.table_url("ws-1", TableKind::Samples).as_str(), "file:///data/lake/ws-1/samples/");
        let lake = LakeLocation::from_path(Path::new("/data/lake/")).unwrap();
        assert_eq!(lake.table_url("ws-1", TableKind::Series).as_str(), "file:///data/lake/ws-1/series/");
        assert_eq!(lake.table_url("../x", TableKind::Series).as_str(), "file:///data/lake/..%2Fx/series/");
        let lake = LakeLocation::parse("s3://bucket/lake").unwrap();
        assert_eq!(lake.table_url("ws-1", TableKind::Samples).as_str(), "s3://bucket/lake/ws-1/samples/");
        let lake = LakeLocation::parse("s3://bucket").unwrap();
        assert_eq!(lake.table_url("ws-1", TableKind::Metadata).as_str(), "s3://bucket/ws-1/metadata/");
        assert!(matches!(LakeLocation::parse("s3:///lake"), Err(Error::InvalidLake { .. })));
        assert!(matches!(LakeLocation::parse("gs://bucket/lake"), Err(Error::InvalidLake { .. })));
    }

    #[test]
    fn s3_options_always_use_conditional_writes() {
        let lake = LakeLocation::parse("s3://bucket/lake").unwrap();
        assert_eq!(lake.storage_options().get("aws_conditional_put").map(String::as_str), Some("etag"));
        let config = S3Config {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("eu-west-1".into()),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("secret".into()),
            allow_http: true,
            options: [("AWS_VIRTUAL_HOSTED_STYLE_REQUEST".to_owned(), "true".to_owned())].into(),
            ..S3Config::default()
        };
        let lake = lake.with_s3(&config).unwrap();
        let options = lake.storage_options();
        assert_eq!(options["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(options["aws_region"], "eu-west-1");
        assert_eq!(options["aws_allow_http"], "true");
        assert_eq!(options["aws_virtual_hosted_style_request"], "true");
        assert_eq!(options["aws_conditional_put"], "etag");
        for (key, value) in [
            ("aws_conditional_put", "disabled"),
            ("AWS_S3_ALLOW_UNSAFE_RENAME", "true"),
            ("aws_s3_locking_provider", "dynamodb"),
        ] {
            let config = S3Config { options: [(key.to_owned(), value.to_owned())].into(), ..S3Config::default() };
            let err = LakeLocation::parse("s3://bucket/lake").unwrap().with_s3(&config).unwrap_err();
            assert!(err.to_string().contains(&key.to_ascii_lowercase()), "{err}");
        }
        // A file lake ignores the S3 settings.
        let file = LakeLocation::parse("file:///data/lake").unwrap().with_s3(&config).unwrap();
        assert!(file.storage_options().is_empty());
    }
}
