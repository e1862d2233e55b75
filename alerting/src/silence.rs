//! Silences as Alertmanager 0.33's `silence` package keeps them: a silence
//! mutes the alerts its matchers match while it is active (`startsAt` ≤
//! now ≤ `endsAt`; before: pending, after: expired), and is forgotten
//! `retention` after its end.
//!
//! * Setting a silence validates it (at least one matcher, names and
//!   regular expressions valid, not every matcher matching the empty
//!   string, both times set, the end not before the start), then either
//!   updates the silence with that id in place — when its matchers are
//!   unchanged and, while active, its start is too and its end is not in
//!   the past, or, while pending, its start is not in the past — or
//!   creates a new silence with a fresh id (a start in the past moves to
//!   now), expiring the previous one.
//! * Expiring an active silence ends it now; a pending one gets start and
//!   end now; an expired one is left as it is.

use std::collections::BTreeMap;

use amconfig::{MatchType, Matcher};

use crate::routing::LabelSet;

/// One silence.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// Empty for a new silence.
    pub id: String,
    pub matchers: Vec<Matcher>,
    /// Unix milliseconds; `None`: not given (now).
    pub starts_at_ms: Option<i64>,
    /// Unix milliseconds.
    pub ends_at_ms: i64,
    pub updated_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

/// A silence's state at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    /// Its API text.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    fn starts(&self) -> i64 {
        self.starts_at_ms.unwrap_or(0)
    }

    /// Its state at `now` (`getState`).
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts() {
            SilenceState::Pending
        } else if now_ms > self.ends_at_ms {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Whether its matchers match `labels`.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        amconfig::matches_all(&self.matchers, labels)
    }
}

/// Why setting or expiring a silence failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceError {
    /// No silence has the given id (404).
    NotFound,
    /// Refused, with Alertmanager's message (400).
    Invalid(String),
}

impl std::fmt::Display for SilenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SilenceError::NotFound => f.write_str("silence not found"),
            SilenceError::Invalid(m) => f.write_str(m),
        }
    }
}

/// The silences of one workspace.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
    /// How long an expired silence is kept, milliseconds (Alertmanager's
    /// `--data.retention`, 120 h).
    retention_ms: i64,
    /// Most silences kept, expired ones included (0: no limit).
    max_silences: usize,
}

/// Alertmanager's default `--data.retention`.
pub const DEFAULT_RETENTION_MS: i64 = 120 * 3_600_000;

fn validate_matcher(i: usize, m: &Matcher) -> Result<(), String> {
    let bad = |why: String| Err(format!("invalid label matcher {i} in set 0: {why}"));
    if m.name.is_empty() || std::str::from_utf8(m.name.as_bytes()).is_err() {
        return bad(format!("invalid label name {:?}", m.name));
    }
    if matches!(m.op, MatchType::Regexp | MatchType::NotRegexp)
        && let Err(e) = Matcher::new(&m.name, m.op, &m.value)
    {
        return bad(format!("invalid regular expression {:?}: {e}", m.value));
    }
    Ok(())
}

/// `validateSilence`, with `Set`'s prefix.
fn validate(s: &Silence) -> Result<(), String> {
    let check = || -> Result<(), String> {
        if s.matchers.is_empty() {
            return Err("at least one matcher set required".into());
        }
        for (i, m) in s.matchers.iter().enumerate() {
            validate_matcher(i, m)?;
        }
        let matches_empty = |m: &Matcher| match m.op {
            MatchType::Equal | MatchType::Regexp => m.matches(""),
            _ => false,
        };
        if s.matchers.iter().all(matches_empty) {
            return Err("matcher set 0: at least one matcher must not match the empty string".into());
        }
        if s.ends_at_ms < s.starts() {
            return Err("end time must not be before start time".into());
        }
        Ok(())
    };
    check().map_err(|e| format!("invalid silence: {e}"))
}

impl Silences {
    /// An empty store keeping expired silences `retention_ms`, at most
    /// `max_silences` of them all (0: no limit).
    pub fn new(retention_ms: i64, max_silences: usize) -> Self {
        Self { by_id: BTreeMap::new(), retention_ms, max_silences }
    }

    /// Changes the most silences kept (0: no limit).
    pub fn set_limit(&mut self, max_silences: usize) {
        self.max_silences = max_silences;
    }

    /// Creates or updates a silence at `now` (`Silences.Set`), returning
    /// its id; `new_id` names a silence that must be created.
    ///
    /// # Errors
    /// [`SilenceError`] with Alertmanager's message.
    pub fn set(
        &mut self,
        mut s: Silence,
        now_ms: i64,
        new_id: impl FnOnce() -> String,
    ) -> Result<String, SilenceError> {
        if s.starts_at_ms.is_none() {
            s.starts_at_ms = Some(now_ms);
        }
        validate(&s).map_err(SilenceError::Invalid)?;
        let prev =
            if s.id.is_empty() { None } else { Some(self.by_id.get(&s.id).cloned().ok_or(SilenceError::NotFound)?) };
        if let Some(prev) = &prev
            && can_update(prev, &s, now_ms)
        {
            s.updated_at_ms = now_ms;
            self.by_id.insert(s.id.clone(), s.clone());
            return Ok(s.id);
        }
        if self.max_silences > 0 && self.by_id.len() + 1 > self.max_silences {
            return Err(SilenceError::Invalid(format!(
                "exceeded maximum number of silences: {} (limit: {})",
                self.by_id.len(),
                self.max_silences
            )));
        }
        s.id = new_id();
        if s.starts() < now_ms {
            s.starts_at_ms = Some(now_ms);
        }
        s.updated_at_ms = now_ms;
        if let Some(prev) = prev
            && prev.state(now_ms) != SilenceState::Expired
        {
            self.expire(&prev.id, now_ms)?;
        }
        self.by_id.insert(s.id.clone(), s.clone());
        Ok(s.id)
    }

    /// Expires a silence at `now` (`Silences.Expire`).
    ///
    /// # Errors
    /// [`SilenceError::NotFound`].
    pub fn expire(&mut self, id: &str, now_ms: i64) -> Result<(), SilenceError> {
        let s = self.by_id.get_mut(id).ok_or(SilenceError::NotFound)?;
        match s.state(now_ms) {
            SilenceState::Expired => return Ok(()),
            SilenceState::Active => s.ends_at_ms = now_ms,
            SilenceState::Pending => {
                s.starts_at_ms = Some(now_ms);
                s.ends_at_ms = now_ms;
            }
        }
        s.updated_at_ms = now_ms;
        Ok(())
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// Every silence kept.
    pub fn all(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// The ids of the active silences muting `labels` at `now`, sorted.
    pub fn muting(&self, labels: &LabelSet, now_ms: i64) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.state(now_ms) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Forgets the silences that ended more than the retention ago (`GC`);
    /// returns their ids.
    pub fn collect(&mut self, now_ms: i64) -> Vec<String> {
        let retention = self.retention_ms;
        let gone: Vec<String> =
            self.by_id.values().filter(|s| s.ends_at_ms + retention <= now_ms).map(|s| s.id.clone()).collect();
        for id in &gone {
            self.by_id.remove(id);
        }
        gone
    }

    /// Restores a silence as it was stored (from the log).
    pub fn restore(&mut self, s: Silence) {
        self.by_id.insert(s.id.clone(), s);
    }
}

/// `canUpdate`: whether `b` may replace `a` in place at `now`.
fn can_update(a: &Silence, b: &Silence, now_ms: i64) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    match a.state(now_ms) {
        SilenceState::Active => a.starts().div_euclid(1000) == b.starts().div_euclid(1000) && b.ends_at_ms >= now_ms,
        SilenceState::Pending => b.starts() >= now_ms,
        SilenceState::Expired => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(matchers: &str, starts: Option<i64>, ends: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers: amconfig::parse_matchers(matchers).unwrap(),
            starts_at_ms: starts,
            ends_at_ms: ends,
            updated_at_ms: 0,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("id-{n}")
        }
    }

    #[test]
    fn a_silence_mutes_while_active_and_updates_in_place_or_anew() {
        let mut st = Silences::new(DEFAULT_RETENTION_MS, 0);
        let mut next = ids();
        let id = st.set(silence("{a=\"b\"}", Some(1_000), 10_000), 5_000, &mut next).unwrap();
        assert_eq!(id, "id-1");
        // A start in the past moved to now.
        assert_eq!(st.get(&id).unwrap().starts_at_ms, Some(5_000));
        let l: LabelSet = [("a".to_owned(), "b".to_owned())].into();
        assert_eq!(st.muting(&l, 10_000), vec!["id-1".to_owned()], "the end is inclusive");
        assert!(st.muting(&l, 10_001).is_empty());
        // Same matchers, same start, later end: updated in place.
        let mut upd = st.get(&id).unwrap().clone();
        upd.ends_at_ms = 20_000;
        assert_eq!(st.set(upd, 6_000, &mut next).unwrap(), "id-1");
        // Other matchers: a new silence, the old one expired.
        let mut other = st.get(&id).unwrap().clone();
        other.matchers = amconfig::parse_matchers("{a=\"c\"}").unwrap();
        assert_eq!(st.set(other, 7_000, &mut next).unwrap(), "id-2");
        assert_eq!(st.get("id-1").unwrap().ends_at_ms, 7_000);
        assert_eq!(st.get("id-1").unwrap().state(7_001), SilenceState::Expired);
        // Expiring a pending silence sets both times.
        let p = st.set(silence("{x=\"y\"}", Some(50_000), 60_000), 8_000, &mut next).unwrap();
        st.expire(&p, 9_000).unwrap();
        let p = st.get(&p).unwrap();
        assert_eq!((p.starts_at_ms, p.ends_at_ms), (Some(9_000), 9_000));
        assert_eq!(st.collect(9_000 + DEFAULT_RETENTION_MS + 1).len(), 2);
    }

    #[test]
    fn invalid_silences_get_alertmanagers_messages() {
        let mut st = Silences::new(DEFAULT_RETENTION_MS, 0);
        let err = |s: Silence, st: &mut Silences| st.set(s, 0, || "x".into()).unwrap_err().to_string();
        assert_eq!(
            err(silence("{a=~\".*\",b=\"\"}", None, 10), &mut st),
            "invalid silence: matcher set 0: at least one matcher must not match the empty string"
        );
        assert_eq!(
            err(silence("{a=\"b\"}", Some(10), 5), &mut st),
            "invalid silence: end time must not be before start time"
        );
        let mut no_matchers = silence("{a=\"b\"}", None, 10);
        no_matchers.matchers.clear();
        assert_eq!(err(no_matchers, &mut st), "invalid silence: at least one matcher set required");
        let mut unknown = silence("{a=\"b\"}", None, 10);
        unknown.id = "nope".into();
        assert_eq!(st.set(unknown, 0, || "x".into()), Err(SilenceError::NotFound));
        assert_eq!(st.all().count(), 0, "nothing stored");
    }
}
