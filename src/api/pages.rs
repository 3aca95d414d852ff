//! The OpenID provider's browser pages: the approval page (which workspace, which groups, who
//! asks), the sign-in page for a browser without a session, and plain notices. Everything shown
//! is escaped; the approval secret travels only in the page's own links.

use hexabase_identity::issuer::code::Redirect;
use url::Url;

/// Who asks for tokens, as the approval page describes them.
pub enum Asking<'a> {
    /// A program on the user's machine, listening at this loopback address.
    Loopback(&'a Redirect),
    /// A device that showed the user this code.
    Device(&'a str),
}

/// What the tokens asked for are good for.
pub enum Target<'a> {
    /// A workspace's API server, with the user's groups in it.
    Workspace {
        name: &'a str,
        id: &'a str,
        groups: &'a [String],
    },
    /// The control plane's API, as the user (the `hexabase` CLI signing in).
    ControlPlane,
}

/// What the approval page shows, and the secret its answers carry.
pub struct ApprovalPage<'a> {
    pub target: Target<'a>,
    pub user: &'a str,
    pub asking: Asking<'a>,
    pub approval: &'a str,
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A plain page: a title and paragraphs of (already escaped) HTML.
pub fn plain_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>\n",
        title = escape(title)
    )
}

/// The page asking the signed-in user whether the program or device asking may have tokens
/// for the workspace.
pub fn approval_page(page: &ApprovalPage<'_>) -> String {
    let decide_path = match page.asking {
        Asking::Loopback(_) => "/oauth/approve",
        Asking::Device(_) => "/oauth/device/approve",
    };
    let link = |decision: &str| {
        let mut url = Url::parse("http://placeholder/").ok();
        if let Some(url) = url.as_mut() {
            url.query_pairs_mut()
                .append_pair("approval", page.approval)
                .append_pair("decision", decision);
        }
        url.map(|u| format!("{decide_path}?{}", u.query().unwrap_or_default()))
            .unwrap_or_default()
    };
    let (who, started) = match (&page.asking, &page.target) {
        (Asking::Loopback(redirect), Target::Workspace { .. }) => (
            format!(
                "A program on your computer, listening at <code>{}</code>,",
                escape(redirect.as_sent())
            ),
            "<code>hexabase login</code> or <code>kubectl oidc-login</code>",
        ),
        (Asking::Loopback(redirect), Target::ControlPlane) => (
            format!(
                "A program on your computer, listening at <code>{}</code>,",
                escape(redirect.as_sent())
            ),
            "<code>hexabase auth login</code>",
        ),
        (Asking::Device(code), _) => (
            format!(
                "The device that showed you the code <code>{}</code>",
                escape(code)
            ),
            "a sign-in with <code>--device</code> and it showed you this code",
        ),
    };
    let (title, what) = match &page.target {
        Target::Workspace { name, id, groups } => (
            format!("Allow kubectl access to {name}?"),
            format!(
                "tokens for the API server of workspace <strong>{}</strong> (<code>{}</code>) \
                 as <code>{}</code>, in the groups <code>{}</code>",
                escape(name),
                escape(id),
                escape(page.user),
                escape(&groups.join(", "))
            ),
        ),
        Target::ControlPlane => (
            "Allow the hexabase CLI to act as you?".to_owned(),
            format!(
                "a session of the control plane as <code>{}</code>: whatever you may do here, \
                 it may do, until you sign it out",
                escape(page.user)
            ),
        ),
    };
    plain_page(
        &title,
        &format!(
            "<p>{who} asks for {what}.</p>\
             <p>Allow it only if you have just started {started} yourself.</p>\
             <p><a id=\"allow\" href=\"{allow}\">Allow</a> &middot; \
             <a id=\"deny\" href=\"{deny}\">Deny</a></p>",
            allow = escape(&link("allow")),
            deny = escape(&link("deny")),
        ),
    )
}

/// The page a browser without a control-plane session gets at `/oauth/authorize`: sign in with
/// one of `providers`, then come back to `back` (the same authorization request).
pub fn sign_in_page(providers: &[&str], back: &str) -> String {
    let links: String = providers
        .iter()
        .filter_map(|provider| {
            let mut url = Url::parse("http://placeholder/auth/login/").ok()?;
            url.path_segments_mut()
                .ok()?
                .pop_if_empty()
                .push(provider)
                .push("browser");
            url.query_pairs_mut().append_pair("return_to", back);
            let href = format!("{}?{}", url.path(), url.query().unwrap_or_default());
            Some(format!(
                "<li><a class=\"provider\" href=\"{}\">Sign in with {}</a></li>",
                escape(&href),
                escape(provider)
            ))
        })
        .collect();
    plain_page(
        "Sign in to continue",
        &format!(
            "<p>kubectl on your computer or on a device asks for access to a workspace. Sign in \
             first; you will then be asked whether to allow it.</p><ul>{links}</ul>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approval_page_escapes_what_it_shows_and_links_both_answers() {
        let redirect = Redirect::parse("http://127.0.0.1:8000/cb").unwrap();
        let groups = ["WSAdmins".to_owned()];
        let page = approval_page(&ApprovalPage {
            target: Target::Workspace {
                name: "<script>alert(1)</script>",
                id: "ws-1",
                groups: &groups,
            },
            user: "hxb-usr-1",
            asking: Asking::Loopback(&redirect),
            approval: "a+b/c",
        });
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("href=\"/oauth/approve?approval=a%2Bb%2Fc&amp;decision=allow\""));
        assert!(page.contains("decision=deny"));
    }
}
