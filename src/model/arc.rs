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
