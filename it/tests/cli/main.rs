//! The `hexabase` CLI — the real binary, on a HOME of its own — against a control plane of
//! its own: signing in through the browser and with a device code, each command's answers
//! and refusals, and the exit codes scripts test.

mod common;
mod events;
mod login;
mod orgs;
mod quickstart;
mod rbac;
mod refusals;
mod workspaces;
