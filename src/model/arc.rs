//! Azure Arc SQL Managed Instance's rotation state: the service-managed credentials
//! generation, whether the controller is still applying a change, and the one-step rule of
//! rollbacks, in one place for the Arc backend's writes and the read verbs.

use kube::api::DynamicObject;

/// What we need to know about an instance to decide on a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArcState {
    /// `status.state` (`Ready`, `Updating`, `Error`, ...), empty if none yet.
    pub state: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`.
    pub observed: Option<i64>,
    /// `spec.update.managedCredentialsGeneration`; NB: missing means 0.
    pub credentials_generation: i64,
    /// Our `last-action` annotation.
    pub last_action: Option<String>,
    /// Our `generation` annotation: what our last change wrote.
    pub annotated_generation: Option<i64>,
    /// `status.message`.
    pub message: Option<String>,
}

impl ArcState {
    /// Reads the state out of an object read through the dynamic API.
    pub fn read(obj: &DynamicObject) -> ArcState {
        super::DbItem::from_dynamic(obj).arc_state()
    }

    /// Whether the state is `state`, in any case.
    pub fn is(&self, state: &str) -> bool {
        self.state.eq_ignore_ascii_case(state)
    }

    /// Whether the controller is still applying a change: Updating, or behind the spec.
    // NB: Error while behind means the change failed and is over; rolling back is the remedy.
    pub fn busy(&self) -> bool {
        self.is("Updating")
            || (!self.is("Error") && self.observed.is_some_and(|o| o < self.generation))
    }

    /// The one-step rule: the generation a rollback goes back to, n-1, and only once. A
    /// rollback the plugin made is not rolled back again (that would be two steps back).
    pub fn rollback_to(&self) -> Result<i64, NoRollback> {
        let n = self.credentials_generation;
        if self.last_action.as_deref() == Some("rollback") && self.annotated_generation == Some(n) {
            return Err(NoRollback::AlreadyRolledBack);
        }
        if n <= 0 {
            return Err(NoRollback::NoPrevious);
        }
        Ok(n - 1)
    }
}

#[cfg(test)]
impl ArcState {
    /// A Ready instance, caught up, at credentials generation `n`, whose last change by the
    /// plugin (if any) was `(action, generation)`.
    pub fn ready_for_test(n: i64, last: Option<(&str, i64)>) -> ArcState {
        ArcState {
            state: "Ready".into(),
            generation: 3,
            observed: Some(3),
            credentials_generation: n,
            last_action: last.map(|l| l.0.to_string()),
            annotated_generation: last.map(|l| l.1),
            message: None,
        }
    }
}

/// Why an Arc instance has no generation to roll back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRollback {
    /// The plugin's last change was a rollback to the current generation: one step only.
    AlreadyRolledBack,
    /// The generation is 0: there is nothing before it.
    NoPrevious,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: i64, last: Option<(&str, i64)>) -> ArcState {
        ArcState::ready_for_test(n, last)
    }

    #[test]
    fn a_rotated_instance_rolls_back_one_generation_once() {
        assert_eq!(state(2, Some(("rotate", 2))).rollback_to(), Ok(1));
        assert_eq!(
            state(1, Some(("rollback", 1))).rollback_to(),
            Err(NoRollback::AlreadyRolledBack)
        );
        assert_eq!(state(0, None).rollback_to(), Err(NoRollback::NoPrevious));
    }

    #[test]
    fn a_rotation_after_a_rollback_can_be_rolled_back_again() {
        assert_eq!(state(2, Some(("rollback", 1))).rollback_to(), Ok(1));
    }
}

/// How many changes the history annotation on an instance keeps (newest first): enough
/// for `history` once the Events are gone, small enough for an annotation.
pub const HISTORY_LIMIT: usize = 10;

/// One change the plugin made to an instance, as its history annotation
/// (`rotate.kubectl.dev/history`, a JSON list) keeps it: the record that outlives Events.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// `rotate` or `rollback`.
    pub action: String,
    /// The generation before.
    pub from: i64,
    /// The generation written.
    pub to: i64,
    /// Who (the name the API server authenticated), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// When, RFC 3339.
    pub at: String,
    /// The write's id (`rotate.kubectl.dev/request-id`).
    #[serde(default)]
    pub request_id: String,
}

/// The history annotation's changes, newest first; nothing when it is absent or not ours
/// to read (a value that does not parse is ignored rather than trusted).
pub fn changes(annotation: Option<&str>) -> Vec<Change> {
    annotation
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_default()
}

/// The history annotation with `change` added in front, cut to [`HISTORY_LIMIT`].
pub fn with_change(annotation: Option<&str>, change: Change) -> String {
    let mut all = changes(annotation);
    all.insert(0, change);
    all.truncate(HISTORY_LIMIT);
    serde_json::to_string(&all).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod history_tests {
    use super::*;

    fn change(to: i64) -> Change {
        Change {
            action: "rotate".into(),
            from: to - 1,
            to,
            user: Some("alice".into()),
            at: "2026-12-02T00:00:00Z".into(),
            request_id: format!("r{to}"),
        }
    }

    #[test]
    fn the_history_keeps_the_newest_changes_first_and_is_bounded() {
        let mut a: Option<String> = None;
        for to in 1..=(HISTORY_LIMIT as i64 + 3) {
            a = Some(with_change(a.as_deref(), change(to)));
        }
        let all = changes(a.as_deref());
        assert_eq!(all.len(), HISTORY_LIMIT);
        assert_eq!(all[0].to, HISTORY_LIMIT as i64 + 3);
        assert_eq!(all.last().unwrap().to, 4);
    }

    #[test]
    fn a_history_that_does_not_parse_is_started_anew() {
        assert!(changes(Some("not json")).is_empty());
        let a = with_change(Some("{\"x\":1}"), change(2));
        assert_eq!(changes(Some(&a)), vec![change(2)]);
    }
}
