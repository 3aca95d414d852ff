//! The `helm` program, as the driver uses it: install or upgrade a release with values given on
//! standard input, read a release's status, uninstall it.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::driver::DriverError;

pub struct Helm {
    pub program: PathBuf,
    pub kubeconfig: Option<PathBuf>,
}

/// Where the chart comes from.
pub struct Chart<'a> {
    pub reference: &'a str,
    pub repository: Option<&'a str>,
    pub version: &'a str,
}

/// What `helm status` says of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `deployed`, `failed`, `pending-install`, `pending-upgrade`, `uninstalling`…
    pub status: String,
    pub revision: u64,
}

/// Errors of helm that no retry fixes: the values or the chart are wrong.
const PERMANENT: &[&str] = &[
    "values don't meet the specifications of the schema",
    "execution error at",
    "parse error",
    "chart requires kubeVersion",
    "not a valid chart repository",
    "no chart version found",
    "no chart name found",
    "path \"",
];

impl Helm {
    async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, DriverError> {
        let mut command = Command::new(&self.program);
        command.args(args);
        if let Some(kubeconfig) = &self.kubeconfig {
            command.arg("--kubeconfig").arg(kubeconfig);
        }
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            DriverError::Permanent(format!(
                "vcluster driver: cannot run {}: {e}",
                self.program.display()
            ))
        })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input)
                .await
                .map_err(|e| DriverError::Transient(format!("helm: writing the values: {e}")))?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| DriverError::Transient(format!("helm: {e}")))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let message = format!("helm {}: {stderr}", args.first().copied().unwrap_or(""));
        Err(if PERMANENT.iter().any(|p| stderr.contains(p)) {
            DriverError::Permanent(message)
        } else if is_not_found(&stderr) {
            DriverError::NotFound(message)
        } else {
            DriverError::Transient(message)
        })
    }

    /// The release's status, or `None` when there is no such release.
    pub async fn status(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Option<Release>, DriverError> {
        let out = match self
            .run(
                &[
                    "status",
                    release,
                    "--namespace",
                    namespace,
                    "--output",
                    "json",
                ],
                None,
            )
            .await
        {
            Ok(out) => out,
            Err(DriverError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let status: Value = serde_json::from_str(&out)
            .map_err(|e| DriverError::Transient(format!("helm status: not JSON: {e}")))?;
        Ok(Some(Release {
            status: status["info"]["status"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned(),
            revision: status["version"].as_u64().unwrap_or(0),
        }))
    }

    /// Install the release, or upgrade it to `chart` with `values` (given whole: nothing of the
    /// previous revision's values is kept).
    pub async fn upgrade(
        &self,
        release: &str,
        namespace: &str,
        chart: &Chart<'_>,
        values: &Value,
    ) -> Result<(), DriverError> {
        let values = serde_json::to_vec(values)
            .map_err(|e| DriverError::Permanent(format!("helm values: {e}")))?;
        let mut args = vec![
            "upgrade",
            release,
            chart.reference,
            "--install",
            "--namespace",
            namespace,
            "--version",
            chart.version,
            "--reset-values",
            "--values",
            "-",
        ];
        if let Some(repository) = chart.repository {
            args.extend(["--repo", repository]);
        }
        self.run(&args, Some(&values)).await.map(|_| ())
    }

    /// Uninstall the release and wait for its resources to be deleted; a release gone is success.
    pub async fn uninstall(
        &self,
        release: &str,
        namespace: &str,
        timeout: &str,
    ) -> Result<(), DriverError> {
        match self
            .run(
                &[
                    "uninstall",
                    release,
                    "--namespace",
                    namespace,
                    "--wait",
                    "--timeout",
                    timeout,
                ],
                None,
            )
            .await
        {
            Ok(_) | Err(DriverError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn is_not_found(stderr: &str) -> bool {
    stderr.contains("not found")
}
