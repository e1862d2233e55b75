//! Where the lake is: a URL (`file:///…` now, `s3://…` later) under which
//! each workspace's tables live at `<lake>/<workspaceId>/<table>`.

use std::path::Path;

use url::Url;

use crate::error::{Error, Result};
use crate::tables::TableKind;

/// The root of the lake, as a URL ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeLocation {
    root: Url,
}

impl LakeLocation {
    /// Parses a lake location: a URL (`file:///var/lib/promlake/lake`) or a
    /// local directory path (made absolute against the current directory).
    /// Only `file` URLs are supported until object storage arrives.
    ///
    /// # Errors
    /// [`Error::InvalidLake`] for an unparsable URL or an unsupported scheme.
    pub fn parse(location: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidLake { location: location.to_owned(), reason };
        let url = if location.contains("://") {
            Url::parse(location).map_err(|e| invalid(e.to_string()))?
        } else {
            return Self::from_path(Path::new(location));
        };
        if url.scheme() != "file" {
            return Err(invalid(format!("scheme {:?} is not supported yet (only file://)", url.scheme())));
        }
        Ok(Self { root: with_trailing_slash(url) })
    }

    /// The lake in a local directory.
    ///
    /// # Errors
    /// [`Error::InvalidLake`] when the path cannot be made absolute.
    pub fn from_path(path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidLake { location: path.display().to_string(), reason };
        let abs = std::path::absolute(path).map_err(|e| invalid(e.to_string()))?;
        let url = Url::from_directory_path(&abs).map_err(|()| invalid("not an absolute directory path".into()))?;
        Ok(Self { root: url })
    }

    /// The lake's root URL.
    pub fn url(&self) -> &Url {
        &self.root
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

    /// The local directory of a `file://` URL, to create before a table is.
    pub(crate) fn local_dir(url: &Url) -> Option<std::path::PathBuf> {
        (url.scheme() == "file").then(|| url.to_file_path().ok()).flatten()
    }
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
        assert!(matches!(LakeLocation::parse("s3://bucket/lake"), Err(Error::InvalidLake { .. })));
    }
}
