//! The agentfarm web app. This is the empty shell the PWA will grow from: it renders the product's name.

use yew::prelude::*;

/// The root component.
#[function_component(App)]
fn app() -> Html {
    html! { <main><h1>{ "agentfarm" }</h1></main> }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
