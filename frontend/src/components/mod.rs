//! Reusable pieces of the screens.

pub mod conn_dot;
pub mod countdown;
pub mod diff_view;
pub mod icon;
pub mod launch_sheet;
pub mod nav;
pub mod run_history;
pub mod run_item;
pub mod state_badge;
pub mod toasts;
pub mod transcript;
pub mod usage_window;
