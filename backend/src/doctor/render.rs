//! The report as an aligned plain-text table, for `agentfarm doctor`.

use agentfarm_shared::api::{CheckStatus, DoctorReport};

/// The report as an aligned plain-text table (`STATUS  CHECK  DETAIL`), a `fix:` line under each failure or
/// warning that has one, and a closing count.
pub fn render(report: &DoctorReport) -> String {
    let one_line = |text: &str| text.replace(['\n', '\r', '\t'], " ");
    let status_width = "STATUS".len();
    let name_width = report
        .checks
        .iter()
        .map(|check| one_line(&check.name).chars().count())
        .chain(["CHECK".len()])
        .max()
        .unwrap_or_default();
    let indent = " ".repeat(status_width + 2 + name_width + 2);
    let mut lines = vec![format!(
        "{:<status_width$}  {:<name_width$}  DETAIL",
        "STATUS", "CHECK"
    )];
    for check in &report.checks {
        let line = format!(
            "{:<status_width$}  {:<name_width$}  {}",
            check.status.label(),
            one_line(&check.name),
            one_line(&check.detail)
        );
        lines.push(line.trim_end().to_owned());
        if check.status != CheckStatus::Pass
            && let Some(fix) = &check.fix
        {
            lines.push(format!("{indent}fix: {}", one_line(fix)));
        }
    }
    let count = |status| {
        report
            .checks
            .iter()
            .filter(|check| check.status == status)
            .count()
    };
    lines.push(String::new());
    lines.push(format!(
        "{} passed, {} warned, {} failed",
        count(CheckStatus::Pass),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail)
    ));
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check;

    #[test]
    fn render_aligns_columns_and_adds_fix_lines() {
        let report = DoctorReport {
            checks: vec![
                check("API server", CheckStatus::Pass, "ok", None),
                check(
                    "RuntimeClass gvisor",
                    CheckStatus::Fail,
                    "not found\nreally",
                    Some("apply it".to_owned()),
                ),
            ],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "STATUS  CHECK                DETAIL");
        assert_eq!(lines[1], "PASS    API server           ok");
        assert_eq!(lines[2], "FAIL    RuntimeClass gvisor  not found really");
        assert_eq!(lines[3], "                             fix: apply it");
        assert!(text.ends_with("1 passed, 0 warned, 1 failed\n"));
        assert!(report.failed());
    }
}
