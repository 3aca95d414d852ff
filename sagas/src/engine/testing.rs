//! Wrappers for testing any saga the same way (the omicron pattern): run every step's action
//! twice — a retry after a crash that came just after the step — and end at the same place as
//! running it once; or fail one step, and find the finished ones undone.

use std::sync::Arc;

use serde_json::Value;

use super::{Action, Cx, Saga, Step, StepError, StepFuture};

/// `saga` with every action run twice in a row (the second run's output is kept).
pub struct Twice<S>(pub S);

/// `saga` whose step `at` (by index) fails for good instead of running.
pub struct FailingAt<S> {
    pub saga: S,
    pub at: usize,
}

fn twice<E: Send + Sync + 'static>(action: Action<E>) -> Action<E> {
    Arc::new(move |cx: &Cx<'_, E>| {
        let action = action.clone();
        let future: StepFuture<'_> = Box::pin(async move {
            action(cx).await?;
            action(cx).await
        });
        future
    })
}

fn failing<E: 'static>(name: &'static str) -> Action<E> {
    Arc::new(move |_cx: &Cx<'_, E>| {
        let future: StepFuture<'_> = Box::pin(async move {
            Err::<Value, _>(StepError::Permanent(format!(
                "step `{name}` failed on purpose"
            )))
        });
        future
    })
}

impl<E: Send + Sync + 'static, S: Saga<E>> Saga<E> for Twice<S> {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn steps(&self) -> Vec<Step<E>> {
        self.0
            .steps()
            .into_iter()
            .map(|step| Step {
                action: twice(step.action),
                undo: step.undo.map(twice),
                name: step.name,
            })
            .collect()
    }

    fn unwinding<'a>(
        &'a self,
        cx: &'a Cx<'a, E>,
        step: &'a str,
        reason: &'a str,
    ) -> StepFuture<'a> {
        self.0.unwinding(cx, step, reason)
    }

    fn failed<'a>(&'a self, cx: &'a Cx<'a, E>, reason: &'a str) -> StepFuture<'a> {
        self.0.failed(cx, reason)
    }
}

impl<E: Send + Sync + 'static, S: Saga<E>> Saga<E> for FailingAt<S> {
    fn kind(&self) -> &'static str {
        self.saga.kind()
    }

    fn steps(&self) -> Vec<Step<E>> {
        self.saga
            .steps()
            .into_iter()
            .enumerate()
            .map(|(index, step)| match index == self.at {
                true => Step {
                    action: failing(step.name),
                    ..step
                },
                false => step,
            })
            .collect()
    }

    fn unwinding<'a>(
        &'a self,
        cx: &'a Cx<'a, E>,
        step: &'a str,
        reason: &'a str,
    ) -> StepFuture<'a> {
        self.saga.unwinding(cx, step, reason)
    }

    fn failed<'a>(&'a self, cx: &'a Cx<'a, E>, reason: &'a str) -> StepFuture<'a> {
        self.saga.failed(cx, reason)
    }
}
