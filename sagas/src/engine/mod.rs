//! The saga engine: a saga is a declared list of steps, each a forward action and (for those
//! with effects to take back) an undo. The runner executes them one at a time, logging in
//! Postgres before and after each; a transient failure is retried with exponential backoff and
//! jitter; a permanent one, or retries exhausted, unwinds the finished steps through their undos
//! in reverse order. Steps must be idempotent — running one again after a crash must end where
//! running it once would — and anything they need to be the same on a retry (ids, names, ports)
//! is produced by an earlier step, whose recorded output they read.

mod backoff;
pub mod log;
mod runner;
pub mod testing;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use backoff::Backoff;
pub use runner::{
    ensure_stream as ensure_task_stream, Aggregate, Outcome, Runner, RunnerSettings, Triggers,
};

/// Which saga a step belongs to.
#[derive(Debug, Clone)]
pub struct SagaRef {
    pub id: String,
    pub kind: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The request that caused the triggering event, for the events the saga records.
    pub correlation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Worth retrying (after a backoff): a peer is briefly away, a cluster still starting.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: the saga unwinds at once.
    #[error("{0}")]
    Permanent(String),
}

pub type StepResult = Result<Value, StepError>;
pub type StepFuture<'a> = BoxFuture<'a, StepResult>;

/// What a step sees: its saga, the saga's parameters, the outputs of the steps finished before
/// it, and the environment the sagas share (connections, the cluster driver, configuration).
pub struct Cx<'a, E> {
    pub saga: &'a SagaRef,
    pub env: &'a E,
    params: &'a Value,
    outputs: &'a BTreeMap<String, Value>,
}

impl<'a, E> Cx<'a, E> {
    pub fn new(
        saga: &'a SagaRef,
        env: &'a E,
        params: &'a Value,
        outputs: &'a BTreeMap<String, Value>,
    ) -> Self {
        Self {
            saga,
            env,
            params,
            outputs,
        }
    }

    /// The saga's parameters.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        serde_json::from_value(self.params.clone())
            .map_err(|e| StepError::Permanent(format!("the saga's parameters: {e}")))
    }

    /// The recorded output of the finished step `step`.
    pub fn output<T: DeserializeOwned>(&self, step: &str) -> Result<T, StepError> {
        let value = self.outputs.get(step).ok_or_else(|| {
            StepError::Permanent(format!("step `{step}` has not recorded an output"))
        })?;
        serde_json::from_value(value.clone())
            .map_err(|e| StepError::Permanent(format!("the output of step `{step}`: {e}")))
    }
}

/// A step's action or undo.
pub type Action<E> = Arc<dyn for<'a> Fn(&'a Cx<'a, E>) -> StepFuture<'a> + Send + Sync>;

/// An action from a function (`|cx| Box::pin(create_cluster(cx))`).
pub fn action<E: 'static>(f: for<'a> fn(&'a Cx<'a, E>) -> StepFuture<'a>) -> Action<E> {
    Arc::new(f)
}

pub struct Step<E> {
    pub name: &'static str,
    pub action: Action<E>,
    /// Takes back what `action` did, given its recorded output; `None` for steps with nothing
    /// to take back. A step whose action failed is never undone, so an action with several
    /// effects is split, or its undo put in a no-op step before it.
    pub undo: Option<Action<E>>,
}

impl<E> Clone for Step<E> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            action: self.action.clone(),
            undo: self.undo.clone(),
        }
    }
}

/// A kind of saga: its name and its steps, plus what it records when it fails.
pub trait Saga<E>: Send + Sync + 'static {
    /// The kind, as logged (`workspace.provision`).
    fn kind(&self) -> &'static str;

    fn steps(&self) -> Vec<Step<E>>;

    /// Whether a run of this saga does the work of the later ones of its kind on the same
    /// aggregate that have not started yet (it reads the aggregate's current state), which then
    /// end without running.
    fn coalesces(&self) -> bool {
        false
    }

    /// Runs once when the saga starts unwinding, before the undos: `step` failed with
    /// `reason` (permanently, or after its last retry). Retried until it succeeds.
    fn unwinding<'a>(
        &'a self,
        _cx: &'a Cx<'a, E>,
        _step: &'a str,
        _reason: &'a str,
    ) -> StepFuture<'a> {
        Box::pin(async { Ok(Value::Null) })
    }

    /// Runs once every finished step has been undone. Retried until it succeeds.
    fn failed<'a>(&'a self, _cx: &'a Cx<'a, E>, _reason: &'a str) -> StepFuture<'a> {
        Box::pin(async { Ok(Value::Null) })
    }
}

/// The sagas a runner knows, by kind.
pub struct Registry<E> {
    sagas: BTreeMap<&'static str, Arc<dyn Saga<E>>>,
}

impl<E> Default for Registry<E> {
    fn default() -> Self {
        Self {
            sagas: BTreeMap::new(),
        }
    }
}

impl<E> Registry<E> {
    pub fn with(mut self, saga: impl Saga<E>) -> Self {
        self.sagas.insert(saga.kind(), Arc::new(saga));
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Saga<E>>> {
        self.sagas.get(kind)
    }
}
