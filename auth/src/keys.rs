//! Principals and their access keys, kept in the control plane (`_control`
//! topic) like every other resource, with each secret access key encrypted
//! (AES-256-GCM, the access key id as associated data) under the
//! deployment's master key: SigV4 needs the secret itself, so it cannot be
//! hashed, but a copy of the log alone does not give it away.
//!
//! Documents (keyed by ARN):
//! - `arn:aws:iam::<account>:user/<name>`: a principal, `{"name", "createdAt",
//!   "policies": [...]}`;
//! - `arn:aws:iam::<account>:accesskey/<AKID>`: `{"accessKeyId",
//!   "principal", "status": "Active"|"Inactive", "createdAt",
//!   "secret": base64(nonce ‖ ciphertext ‖ tag)}`.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::clock::Clock;
use common::control::ControlPlaneStore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::policy::Policy;

/// Length of the master key, bytes.
const MASTER_KEY_BYTES: usize = 32;

/// A failure of the key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The control-plane store failed.
    #[error(transparent)]
    Store(#[from] common::control::ControlError),
    /// The master key file cannot be read or written, or is malformed.
    #[error("master key {path}: {message}")]
    MasterKey {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A secret cannot be encrypted or decrypted (a wrong master key).
    #[error("access key {0}: its secret cannot be decrypted with this master key")]
    Decrypt(String),
    /// Random bytes are unavailable.
    #[error("no secure random source")]
    Random,
    /// No such principal or key.
    #[error("{0} not found")]
    NotFound(String),
    /// The principal exists already.
    #[error("{0} already exists")]
    Exists(String),
    /// A name of the wrong shape.
    #[error("{0}")]
    Invalid(String),
}

/// An access key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyStatus {
    /// Accepted.
    Active,
    /// Refused (revoked, or rotated out).
    Inactive,
}

/// An access key as the verifier needs it (its `Debug` hides the secret).
#[derive(Clone)]
pub struct AccessKey {
    /// `AKIA…`.
    pub access_key_id: String,
    /// The principal it belongs to.
    pub principal: String,
    /// Whether it is accepted.
    pub status: KeyStatus,
    /// The secret access key, decrypted.
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal)
            .field("status", &self.status)
            .field("secret", &"…")
            .finish()
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyDoc {
    access_key_id: String,
    principal: String,
    status: KeyStatus,
    created_at: f64,
    secret: String,
}

/// The master key that encrypts secret access keys.
pub struct MasterKey(LessSafeKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// Reads the master key from `path` (64 hex digits), creating the file
    /// (mode 0600) with a random key when it does not exist. Every process
    /// of a deployment must use the same file.
    ///
    /// # Errors
    /// When the file cannot be read, written or parsed.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let err = |message: String| KeyError::MasterKey { path: path.display().to_string(), message };
        let bytes = match std::fs::read_to_string(path) {
            Ok(text) => hex::decode(text.trim()).map_err(|e| err(format!("not hex: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; MASTER_KEY_BYTES];
                SystemRandom::new().fill(&mut key).map_err(|_| KeyError::Random)?;
                write_private(path, &format!("{}\n", hex::encode(key))).map_err(|e| err(e.to_string()))?;
                key.to_vec()
            }
            Err(e) => return Err(err(e.to_string())),
        };
        Self::from_bytes(&bytes).map_err(|()| err(format!("must be {MASTER_KEY_BYTES} bytes")))
    }

    /// A master key of 32 bytes.
    ///
    /// # Errors
    /// When `bytes` has another length.
    #[allow(clippy::result_unit_err)]
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ()> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| ())?;
        Ok(Self(LessSafeKey::new(key)))
    }

    fn seal(&self, access_key_id: &str, secret: &str) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| KeyError::Random)?;
        let mut data = secret.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(access_key_id.as_bytes()),
                &mut data,
            )
            .map_err(|_| KeyError::Decrypt(access_key_id.to_owned()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(B64.encode(out))
    }

    fn open(&self, access_key_id: &str, sealed: &str) -> Result<String, KeyError> {
        let fail = || KeyError::Decrypt(access_key_id.to_owned());
        let bytes = B64.decode(sealed).map_err(|_| fail())?;
        if bytes.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut data = data.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(access_key_id.as_bytes()), &mut data).map_err(|_| fail())?;
        String::from_utf8(plain.to_vec()).map_err(|_| fail())
    }
}

/// Principals and access keys over the control-plane store.
#[derive(Debug)]
pub struct KeyStore {
    store: Arc<dyn ControlPlaneStore>,
    master: MasterKey,
    clock: Arc<dyn Clock>,
    account_id: String,
}

impl KeyStore {
    /// A key store for `account_id`'s principals.
    pub fn new(store: Arc<dyn ControlPlaneStore>, master: MasterKey, clock: Arc<dyn Clock>, account_id: &str) -> Self {
        Self { store, master, clock, account_id: account_id.to_owned() }
    }

    /// The ARN of a principal.
    pub fn principal_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/{name}", self.account_id)
    }

    fn key_arn(&self, access_key_id: &str) -> String {
        format!("arn:aws:iam::{}:accesskey/{access_key_id}", self.account_id)
    }

    /// The access key with this id, its secret decrypted.
    ///
    /// # Errors
    /// `Decrypt` when the master key is not the one that sealed it.
    pub fn lookup(&self, access_key_id: &str) -> Result<Option<AccessKey>, KeyError> {
        if !is_access_key_id(access_key_id) {
            return Ok(None);
        }
        let Some(doc) = self.store.get(&self.key_arn(access_key_id)) else { return Ok(None) };
        let Ok(doc) = serde_json::from_value::<KeyDoc>(doc) else { return Ok(None) };
        let secret = self.master.open(&doc.access_key_id, &doc.secret)?;
        Ok(Some(AccessKey { access_key_id: doc.access_key_id, principal: doc.principal, status: doc.status, secret }))
    }

    /// Checks that the master key opens the stored secrets (every process of
    /// a deployment must read the same master key file): tries one key.
    ///
    /// # Errors
    /// `Decrypt` naming the key that cannot be opened.
    pub fn check_master_key(&self) -> Result<(), KeyError> {
        let keys = self.store.list(&format!("arn:aws:iam::{}:accesskey/", self.account_id));
        if let Some((_, doc)) = keys.first()
            && let Ok(doc) = serde_json::from_value::<KeyDoc>(doc.clone())
        {
            self.master.open(&doc.access_key_id, &doc.secret)?;
        }
        Ok(())
    }

    /// Whether any access key exists (first start has none).
    pub fn has_keys(&self) -> bool {
        !self.store.list(&format!("arn:aws:iam::{}:accesskey/", self.account_id)).is_empty()
    }

    /// Creates a principal with `policies` (each the name of a built-in
    /// policy or an IAM policy document).
    ///
    /// # Errors
    /// `Invalid` for a bad name or policy, `Exists` when it exists, the
    /// store's errors.
    pub async fn create_principal(&self, name: &str, policies: Vec<serde_json::Value>) -> Result<(), KeyError> {
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        {
            return Err(KeyError::Invalid(format!("invalid principal name {name:?}: 1–64 of [A-Za-z0-9+=,.@_-]")));
        }
        parse_policies(&policies)?;
        let arn = self.principal_arn(name);
        if self.store.get(&arn).is_some() {
            return Err(KeyError::Exists(format!("principal {name}")));
        }
        let doc = serde_json::json!({
            "name": name,
            "createdAt": self.clock.now_ms() as f64 / 1000.0,
            "policies": policies,
        });
        self.store.put(&arn, doc).await?;
        Ok(())
    }

    /// Replaces a principal's policies.
    ///
    /// # Errors
    /// `Invalid` for a bad policy, `NotFound`, the store's errors.
    pub async fn set_policies(&self, name: &str, policies: Vec<serde_json::Value>) -> Result<(), KeyError> {
        parse_policies(&policies)?;
        let arn = self.principal_arn(name);
        let mut doc = self.store.get(&arn).ok_or_else(|| KeyError::NotFound(format!("principal {name}")))?;
        doc["policies"] = serde_json::Value::Array(policies);
        self.store.put(&arn, doc).await?;
        Ok(())
    }

    /// A principal's document (name, creation time, policies) and its
    /// access keys (ids and states, never the secrets).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn describe_principal(&self, name: &str) -> Result<serde_json::Value, KeyError> {
        let mut doc =
            self.store.get(&self.principal_arn(name)).ok_or_else(|| KeyError::NotFound(format!("principal {name}")))?;
        let keys: Vec<serde_json::Value> = self
            .store
            .list(&format!("arn:aws:iam::{}:accesskey/", self.account_id))
            .into_iter()
            .filter_map(|(_, k)| serde_json::from_value::<KeyDoc>(k).ok())
            .filter(|k| k.principal == name)
            .map(|k| serde_json::json!({"accessKeyId": k.access_key_id, "status": k.status, "createdAt": k.created_at}))
            .collect();
        doc["accessKeys"] = serde_json::Value::Array(keys);
        doc["arn"] = self.principal_arn(name).into();
        Ok(doc)
    }

    /// The policies of a principal, parsed (none for an unknown principal).
    ///
    /// # Errors
    /// `Invalid` when a stored policy no longer parses.
    pub fn policies(&self, name: &str) -> Result<Vec<Policy>, KeyError> {
        let Some(doc) = self.store.get(&self.principal_arn(name)) else { return Ok(Vec::new()) };
        let list = doc.get("policies").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
        parse_policies(&list)
    }

    /// Creates an active access key for `principal`: its id and secret.
    ///
    /// # Errors
    /// `NotFound` when the principal does not exist, the store's errors.
    pub async fn create_key(&self, principal: &str) -> Result<(String, String), KeyError> {
        if self.store.get(&self.principal_arn(principal)).is_none() {
            return Err(KeyError::NotFound(format!("principal {principal}")));
        }
        let access_key_id = format!("AKIA{}", random_chars(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")?);
        let secret = random_chars(40, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")?;
        let doc = KeyDoc {
            access_key_id: access_key_id.clone(),
            principal: principal.to_owned(),
            status: KeyStatus::Active,
            created_at: self.clock.now_ms() as f64 / 1000.0,
            secret: self.master.seal(&access_key_id, &secret)?,
        };
        let doc = serde_json::to_value(&doc).map_err(|e| KeyError::Invalid(e.to_string()))?;
        self.store.put(&self.key_arn(&access_key_id), doc).await?;
        Ok((access_key_id, secret))
    }

    /// The principal an access key belongs to.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn key_principal(&self, access_key_id: &str) -> Result<String, KeyError> {
        let doc = self
            .store
            .get(&self.key_arn(access_key_id))
            .ok_or_else(|| KeyError::NotFound(format!("access key {access_key_id}")))?;
        doc.get("principal")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| KeyError::NotFound(format!("access key {access_key_id}")))
    }

    /// Makes a key inactive (revoked): refused from the moment this returns
    /// in this process, and as soon as the others read `_control`.
    ///
    /// # Errors
    /// `NotFound`, the store's errors.
    pub async fn revoke_key(&self, access_key_id: &str) -> Result<(), KeyError> {
        let arn = self.key_arn(access_key_id);
        let mut doc = self.store.get(&arn).ok_or_else(|| KeyError::NotFound(format!("access key {access_key_id}")))?;
        doc["status"] = serde_json::to_value(KeyStatus::Inactive).map_err(|e| KeyError::Invalid(e.to_string()))?;
        self.store.put(&arn, doc).await?;
        Ok(())
    }
}

/// Parses a principal's policies: each the name of a built-in policy or an
/// IAM policy document.
///
/// # Errors
/// `Invalid` naming the bad one.
pub fn parse_policies(list: &[serde_json::Value]) -> Result<Vec<Policy>, KeyError> {
    list.iter()
        .map(|p| match p {
            serde_json::Value::String(name) => crate::policy::builtin(name).ok_or_else(|| {
                KeyError::Invalid(format!(
                    "unknown built-in policy {name:?}: one of {}",
                    crate::policy::BUILTIN_POLICIES.join(", ")
                ))
            }),
            doc => Policy::from_value(doc).map_err(|e| KeyError::Invalid(e.to_string())),
        })
        .collect()
}

/// `AKIA` or `ASIA` and 16 more upper-case letters or digits.
fn is_access_key_id(id: &str) -> bool {
    id.len() == 20 && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn random_chars(n: usize, alphabet: &[u8]) -> Result<String, KeyError> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Random)?;
    // The alphabets have 32 or 64 characters: no modulo bias.
    Ok(bytes.iter().map(|b| alphabet[*b as usize % alphabet.len()] as char).collect())
}

/// Writes `text` to `path` readable by its owner only (0600).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::clock::ManualClock;
    use common::control::MemoryControlStore;

    #[tokio::test]
    async fn secrets_are_stored_encrypted_and_keys_can_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let store = Arc::new(MemoryControlStore::default());
        let keys = KeyStore::new(
            store.clone(),
            MasterKey::load_or_create(&path).unwrap(),
            ManualClock::new(0),
            "123456789012",
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(!keys.has_keys());
        assert!(matches!(keys.create_key("nobody").await, Err(KeyError::NotFound(_))));
        keys.create_principal("admin", vec!["AmazonPrometheusFullAccess".into()]).await.unwrap();
        assert!(matches!(keys.create_principal("admin", vec![]).await, Err(KeyError::Exists(_))));
        assert!(matches!(keys.create_principal("x", vec!["NoSuchPolicy".into()]).await, Err(KeyError::Invalid(_))));
        assert!(matches!(
            keys.create_principal("x", vec![serde_json::json!({"Statement": {"Effect": "Maybe"}})]).await,
            Err(KeyError::Invalid(_))
        ));
        assert_eq!(keys.policies("admin").unwrap().len(), 1);
        let (id, secret) = keys.create_key("admin").await.unwrap();
        assert!(is_access_key_id(&id) && id.starts_with("AKIA"), "{id}");
        assert_eq!(secret.len(), 40);
        assert!(keys.has_keys());
        let stored = serde_json::to_string(&store.list("")).unwrap();
        assert!(!stored.contains(&secret), "the secret is stored in clear");
        let found = keys.lookup(&id).unwrap().unwrap();
        assert_eq!(
            (found.secret.as_str(), found.principal.as_str(), found.status),
            (secret.as_str(), "admin", KeyStatus::Active)
        );
        assert!(keys.lookup("AKIA0000000000000000").unwrap().is_none());
        assert!(keys.lookup("not-a-key").unwrap().is_none());

        // The same master key file reads it back; another key cannot.
        let again = KeyStore::new(
            store.clone(),
            MasterKey::load_or_create(&path).unwrap(),
            ManualClock::new(0),
            "123456789012",
        );
        assert_eq!(again.lookup(&id).unwrap().unwrap().secret, secret);
        let other =
            KeyStore::new(store.clone(), MasterKey::from_bytes(&[7; 32]).unwrap(), ManualClock::new(0), "123456789012");
        assert!(matches!(other.lookup(&id), Err(KeyError::Decrypt(_))));

        keys.revoke_key(&id).await.unwrap();
        assert_eq!(keys.lookup(&id).unwrap().unwrap().status, KeyStatus::Inactive);
    }
}
