//! How runs ended over the last two weeks (`#history`): an SVG with one `g.day[data-day]` a day (its
//! `title` says the counts), a bar stacked from succeeded, failed and stopped runs (`rect.bar-succeeded`,
//! `.bar-failed`, `.bar-stopped`), and the period's runs and cost (`#history-total`).

use agentfarm_shared::api::DayRuns;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api;
use crate::time::usd;
use crate::util::concat;

/// The chart, loaded when shown.
#[component]
pub fn RunHistory() -> Html {
    let days = use_state(|| None::<Result<Vec<DayRuns>, String>>);
    {
        let days = days.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                days.set(Some(api::history().await.map_err(|f| f.to_string())));
            });
        });
    }
    html! {
        <section id="history" class="card">
            <h2 class="section-title">{ "Runs, last 14 days" }</h2>
            { match &*days {
                None => html! { <p class="muted">{ "Loading…" }</p> },
                Some(Err(error)) => html! { <p class="load-error" role="alert">{ concat(&["Could not load the history: ", error]) }</p> },
                Some(Ok(days)) => chart(days),
            } }
        </section>
    }
}

fn chart(days: &[DayRuns]) -> Html {
    let runs: u32 = days.iter().map(DayRuns::total).sum();
    let cost: f64 = days.iter().map(|day| day.cost_usd).sum();
    let tallest = days.iter().map(DayRuns::total).max().unwrap_or(0).max(1);
    // One 10-wide column a day in a 100-high box, stretched to the card (attributes, not inline styles,
    // which the page's Content-Security-Policy refuses).
    let width = (days.len() * 10).to_string();
    html! {
        <>
            <p id="history-total" class="muted">
                { concat(&[&runs.to_string(), if runs == 1 { " run · " } else { " runs · " }, &usd(cost)]) }
            </p>
            <svg class="history-bars" viewBox={concat(&["0 0 ", &width, " 100"])} preserveAspectRatio="none"
                role="img" aria-label="Runs per day: succeeded, failed, stopped">
                { for days.iter().enumerate().map(|(index, day)| {
                    let title = concat(&[
                        &day.day, ": ", &day.succeeded.to_string(), " succeeded, ", &day.failed.to_string(),
                        " failed, ", &day.stopped.to_string(), " stopped · ", &usd(day.cost_usd),
                    ]);
                    let x = (index * 10 + 1).to_string();
                    let mut top = 100;
                    let mut bar = |class: &'static str, count: u32| {
                        let height = count * 100 / tallest;
                        top -= height;
                        html! {
                            <rect class={class} x={x.clone()} y={top.to_string()} width="8" height={height.to_string()} />
                        }
                    };
                    html! {
                        <g class="day" data-day={day.day.clone()}>
                            <title>{ title }</title>
                            <rect class="bar-day" x={x.clone()} y="0" width="8" height="100" />
                            { bar("bar-succeeded", day.succeeded) }
                            { bar("bar-failed", day.failed) }
                            { bar("bar-stopped", day.stopped) }
                        </g>
                    }
                }) }
            </svg>
            <p class="history-legend muted">
                <span class="key bar-succeeded"></span>{ "succeeded " }
                <span class="key bar-failed"></span>{ "failed " }
                <span class="key bar-stopped"></span>{ "stopped" }
            </p>
        </>
    }
}
