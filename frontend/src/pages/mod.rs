//! One module per screen.

pub mod agents;
pub mod config_editor;
pub mod configs;
pub mod run;
pub mod settings;
