//! Icons as inline SVG (`svg.icon`, stroked in the text's colour by style.css), so they never depend on a
//! font having a glyph; each is one path on a 24×24 grid.

use yew::prelude::*;

/// Agents: a ring with a dot.
pub const AGENTS: &str = "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18zm0 7a2 2 0 1 0 0 4a2 2 0 1 0 0-4z";
/// Configs: a list.
pub const CONFIGS: &str = "M4 6h16M4 12h16M4 18h16";
/// Settings: two sliders.
pub const SETTINGS: &str = "M4 7h9m4 0h3M4 17h3m4 0h9M15 5v4M9 15v4";
/// An arrow down.
pub const DOWN: &str = "M12 5v14m-6-6 6 6 6-6";
/// A clock.
pub const CLOCK: &str = "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18zm0 4v5l3 3";
/// A plus.
pub const PLUS: &str = "M12 5v14M5 12h14";

/// The icon drawn by `path`, hidden from screen readers (its text says what it is).
pub fn icon(path: &'static str) -> Html {
    html! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d={path} /></svg>
    }
}
