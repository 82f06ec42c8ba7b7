//! The parsed tree as Yew nodes: elements and text nodes only (Yew escapes text), anchors only for safe links
//! (`target="_blank"`, `rel="noopener noreferrer"`), tables inside a container that scrolls sideways.

use yew::prelude::*;

use super::{Align, Block, Inline, Table, parse};

/// Renders Markdown source as Yew nodes.
pub fn render(source: &str) -> Html {
    render_blocks(&parse(source))
}

fn render_blocks(blocks: &[Block]) -> Html {
    blocks.iter().map(render_block).collect()
}

fn render_block(block: &Block) -> Html {
    match block {
        Block::Heading(level, content) => {
            let content = render_inlines(content);
            match level {
                1 => html! { <h3 class="md-h1">{ content }</h3> },
                2 => html! { <h4 class="md-h2">{ content }</h4> },
                _ => html! { <h5 class="md-h3">{ content }</h5> },
            }
        }
        Block::Paragraph(content) => html! { <p>{ render_inlines(content) }</p> },
        Block::Code(lang, code) => html! {
            <pre class="md-code" data-lang={lang.clone()}><code>{ code.clone() }</code></pre>
        },
        Block::List(start, items) => {
            let items = items.iter().map(|item| html! { <li>{ render_item(item) }</li> });
            match start {
                None => html! { <ul>{ for items }</ul> },
                Some(start) => html! { <ol start={start.to_string()}>{ for items }</ol> },
            }
        }
        Block::Quote(inner) => html! { <blockquote>{ render_blocks(inner) }</blockquote> },
        Block::Table(table) => render_table(table),
        Block::Rule => html! { <hr/> },
    }
}

/// A list item: its leading paragraph inline (as in a tight list), then its other blocks.
fn render_item(blocks: &[Block]) -> Html {
    match blocks {
        [Block::Paragraph(first), rest @ ..] => {
            html! { <>{ render_inlines(first) }{ render_blocks(rest) }</> }
        }
        _ => render_blocks(blocks),
    }
}

fn render_table(table: &Table) -> Html {
    let row = |cells: &[Vec<Inline>], header: bool| -> Html {
        cells
            .iter()
            .zip(&table.align)
            .map(|(cell, &align)| {
                let class = match align {
                    Align::Center => Some("md-c"),
                    Align::Right => Some("md-r"),
                    Align::Default | Align::Left => None,
                };
                let content = render_inlines(cell);
                if header {
                    html! { <th class={class}>{ content }</th> }
                } else {
                    html! { <td class={class}>{ content }</td> }
                }
            })
            .collect()
    };
    html! {
        <div class="md-table">
            <table>
                <thead><tr>{ row(&table.head, true) }</tr></thead>
                <tbody>{ for table.rows.iter().map(|cells| html! { <tr>{ row(cells, false) }</tr> }) }</tbody>
            </table>
        </div>
    }
}

fn render_inlines(content: &[Inline]) -> Html {
    content.iter().map(render_inline).collect()
}

fn render_inline(inline: &Inline) -> Html {
    match inline {
        Inline::Text(text) => html! { { text.clone() } },
        Inline::Code(code) => html! { <code>{ code.clone() }</code> },
        Inline::Strong(inner) => html! { <strong>{ render_inlines(inner) }</strong> },
        Inline::Em(inner) => html! { <em>{ render_inlines(inner) }</em> },
        Inline::Link { text, href, safe } => {
            let label = render_inlines(text);
            // Where it really points, unless the text says exactly that (a bare URL).
            let target = (!matches!(&text[..], [Inline::Text(shown)] if shown == href))
                .then(|| html! { <span class="md-href">{ format!(" ({href})") }</span> });
            if *safe {
                html! {
                    <>
                        <a href={href.clone()} target="_blank" rel="noopener noreferrer">{ label }</a>
                        { target }
                    </>
                }
            } else {
                html! { <>{ label }{ target }</> }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nodes as HTML, text escaped; fails on anything but elements, text and fragments (raw HTML).
    fn markup(node: &Html) -> String {
        match node {
            Html::VTag(tag) => {
                let attributes: String = tag
                    .attributes
                    .iter()
                    .map(|(name, value)| format!(" {name}=\"{value}\""))
                    .collect();
                let children = tag.children().map(markup).unwrap_or_default();
                format!("<{0}{attributes}>{children}</{0}>", tag.tag())
            }
            Html::VText(text) => text.text.replace('&', "&amp;").replace('<', "&lt;"),
            Html::VList(list) => list.iter().map(markup).collect(),
            other => panic!("not an element or text: {other:?}"),
        }
    }

    fn html(source: &str) -> String {
        markup(&render(source))
    }

    #[test]
    fn tables_scroll_sideways_in_their_container() {
        assert_eq!(
            html("| a | b | c |\n|---|:-:|--:|\n| 1 | 2 |"),
            "<div class=\"md-table\"><table><thead><tr><th>a</th><th class=\"md-c\">b</th>\
             <th class=\"md-r\">c</th></tr></thead><tbody><tr><td>1</td><td class=\"md-c\">2</td>\
             <td class=\"md-r\"></td></tr></tbody></table></div>"
        );
    }

    #[test]
    fn quotes_and_lists_nest() {
        assert_eq!(
            html("> a\n>> b\n\n3. one\n   - sub\n\n     more\n---"),
            "<blockquote><p>a</p><blockquote><p>b</p></blockquote></blockquote>\
             <ol start=\"3\"><li>one<ul><li>sub<p>more</p></li></ul></li></ol><hr></hr>"
        );
    }

    #[test]
    fn only_web_links_are_anchors() {
        assert_eq!(
            html("[docs](https://x.dev/a) https://y.dev"),
            "<p><a href=\"https://x.dev/a\" target=\"_blank\" rel=\"noopener noreferrer\">docs</a>\
             <span class=\"md-href\"> (https://x.dev/a)</span> \
             <a href=\"https://y.dev\" target=\"_blank\" rel=\"noopener noreferrer\">https://y.dev</a></p>"
        );
        assert_eq!(
            html("[click](javascript:alert(1)) [x](data:text/html,hi)"),
            "<p>click<span class=\"md-href\"> (javascript:alert(1))</span> \
             x<span class=\"md-href\"> (data:text/html,hi)</span></p>"
        );
    }

    #[test]
    fn html_is_shown_as_text() {
        assert_eq!(
            html("<script>alert(1)</script> &amp;\n| <b>x</b> |\n|---|"),
            "<p>&lt;script>alert(1)&lt;/script> &amp;amp;</p>\
             <div class=\"md-table\"><table><thead><tr><th>&lt;b>x&lt;/b></th></tr></thead><tbody></tbody></table></div>"
        );
    }
}
