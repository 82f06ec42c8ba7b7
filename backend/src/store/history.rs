//! How runs ended, day by day: the Settings screen's chart.

use agentfarm_shared::api::DayRuns;
use chrono::{DateTime, Days, NaiveTime, Utc};

use super::{Store, StoreError, to_millis};

impl Store {
    /// The `days` days up to and including `today`'s (UTC), oldest first, each present even without a run:
    /// the runs that ended that day by how, and their cost.
    pub async fn run_history(&self, today: DateTime<Utc>, days: u32) -> Result<Vec<DayRuns>, StoreError> {
        let first = today
            .date_naive()
            .checked_sub_days(Days::new(u64::from(days.saturating_sub(1))))
            .unwrap_or(today.date_naive());
        let mut history: Vec<DayRuns> = first
            .iter_days()
            .take(days as usize)
            .map(|day| DayRuns {
                day: day.format("%Y-%m-%d").to_string(),
                ..DayRuns::default()
            })
            .collect();
        let since = to_millis(first.and_time(NaiveTime::MIN).and_utc());
        let rows = self
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT strftime('%Y-%m-%d', finished_at / 1000, 'unixepoch'), state, COUNT(*),
                            COALESCE(SUM(cost_usd), 0)
                     FROM runs WHERE finished_at >= ?1 GROUP BY 1, 2",
                )?;
                let rows = stmt.query_map([since], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, u32>(2)?,
                        row.get::<_, f64>(3)?,
                    ))
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        for (day, state, count, cost) in rows {
            let Some(entry) = history.iter_mut().find(|entry| entry.day == day) else {
                continue;
            };
            match state.as_str() {
                "succeeded" => entry.succeeded += count,
                "failed" => entry.failed += count,
                _ => entry.stopped += count,
            }
            entry.cost_usd += cost;
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use agentfarm_shared::config::ConfigSpec;
    use agentfarm_shared::run::RunState;
    use chrono::TimeZone;

    use super::*;
    use crate::store::{NewRun, RunPatch};

    #[tokio::test]
    async fn runs_are_counted_on_the_day_they_ended_with_their_cost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("farm.db")).unwrap();
        let at = |day: u32, hour: u32| Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap();
        store
            .create_config("c".into(), ConfigSpec::new("c", "task"), at(1, 0))
            .await
            .unwrap();
        let ended = [
            ("a", 5, RunState::Succeeded, Some(0.5)),
            ("b", 5, RunState::Failed, Some(0.25)),
            ("c", 7, RunState::Succeeded, None),
            ("d", 7, RunState::Stopped, Some(1.0)),
            ("e", 7, RunState::Lost, None),
            ("f", 1, RunState::Succeeded, Some(9.0)),
        ];
        for (id, day, state, cost) in ended {
            let run = NewRun {
                id: id.into(),
                config_id: "c".into(),
                config_version: 1,
                prompt: "p".into(),
                branch: format!("agentfarm/{id}"),
            };
            store.insert_run(run, at(day, 1)).await.unwrap();
            for started in [RunState::Starting, RunState::Running] {
                store
                    .transition(id.into(), started, RunPatch::default(), at(day, 2))
                    .await
                    .unwrap();
            }
            let patch = RunPatch {
                cost_usd: cost,
                ..RunPatch::default()
            };
            store
                .transition(id.into(), state, patch, at(day, 23))
                .await
                .unwrap();
        }
        let still_running = NewRun {
            id: "g".into(),
            config_id: "c".into(),
            config_version: 1,
            prompt: "p".into(),
            branch: "agentfarm/g".into(),
        };
        store.insert_run(still_running, at(7, 1)).await.unwrap();

        let history = store.run_history(at(7, 12), 3).await.unwrap();
        let days: Vec<&str> = history.iter().map(|day| day.day.as_str()).collect();
        assert_eq!(
            days,
            ["2026-12-05", "2026-12-06", "2026-12-07"],
            "every day, oldest first"
        );
        assert_eq!(
            (
                history[0].succeeded,
                history[0].failed,
                history[0].stopped,
                history[0].cost_usd
            ),
            (1, 1, 0, 0.75)
        );
        assert_eq!(
            history[1],
            DayRuns {
                day: "2026-12-06".into(),
                ..DayRuns::default()
            }
        );
        assert_eq!(
            (
                history[2].succeeded,
                history[2].stopped,
                history[2].total(),
                history[2].cost_usd
            ),
            (1, 2, 3, 1.0),
            "a lost run counts as stopped; the run still going counts nowhere; day 1 is before the range"
        );
    }
}
