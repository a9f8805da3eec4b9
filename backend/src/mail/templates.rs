//! Email templates (askama): each message has an HTML and a plain-text part sharing one layout
//! (`templates/mail/base.{html,txt}`). A missing field is a compile error.

use askama::Template;

/// A rendered email body.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub template: &'static str,
}

macro_rules! email {
    ($name:ident, $html:literal, $txt:literal, $key:literal, { $($field:ident : $ty:ty),* $(,)? }) => {
        pub mod $name {
            use askama::Template;

            #[derive(Template)]
            #[template(path = $html)]
            pub struct Html<'a> { pub subject: &'a str, $(pub $field: $ty),* }

            #[derive(Template)]
            #[template(path = $txt)]
            pub struct Text<'a> { pub subject: &'a str, $(pub $field: $ty),* }

            pub const KEY: &str = $key;
        }
    };
}

email!(verify_email, "mail/verify_email.html", "mail/verify_email.txt", "verify_email", { link: &'a str });
email!(reset_password, "mail/reset_password.html", "mail/reset_password.txt", "reset_password", { name: &'a str, link: &'a str });
email!(signup_existing, "mail/signup_existing.html", "mail/signup_existing.txt", "signup_existing", { link: &'a str });
email!(email_change_taken, "mail/email_change_taken.html", "mail/email_change_taken.txt", "email_change_taken", { link: &'a str });
email!(confirm_email_change, "mail/confirm_email_change.html", "mail/confirm_email_change.txt", "confirm_email_change", { link: &'a str });
email!(signup_approved, "mail/signup_approved.html", "mail/signup_approved.txt", "signup_approved", { link: &'a str });
email!(signup_rejected, "mail/signup_rejected.html", "mail/signup_rejected.txt", "signup_rejected", { reason: &'a str, reapply: &'a str });
email!(email_changed, "mail/email_changed.html", "mail/email_changed.txt", "email_changed", { new_address: &'a str, link: &'a str });

fn render(
    subject: &str,
    template: &'static str,
    html: &impl Template,
    text: &impl Template,
) -> anyhow::Result<Rendered> {
    Ok(Rendered {
        subject: subject.to_owned(),
        text: text.render()?,
        html: html.render()?,
        template,
    })
}

/// "Confirm your email address". Carries no display name: anyone can sign up with any address, so a name
/// chosen by the person signing up must not reach the address's owner.
///
/// # Errors
/// Template rendering errors.
pub fn verify(link: &str) -> anyhow::Result<Rendered> {
    let subject = "Confirm your email address for Vortex";
    render(
        subject,
        verify_email::KEY,
        &verify_email::Html { subject, link },
        &verify_email::Text { subject, link },
    )
}

/// "Reset your password".
///
/// # Errors
/// Template rendering errors.
pub fn reset(name: &str, link: &str) -> anyhow::Result<Rendered> {
    let subject = "Reset your Vortex password";
    render(
        subject,
        reset_password::KEY,
        &reset_password::Html {
            subject,
            name,
            link,
        },
        &reset_password::Text {
            subject,
            name,
            link,
        },
    )
}

/// "Someone tried to sign up with your address" (sent instead of revealing that the account exists).
///
/// # Errors
/// Template rendering errors.
pub fn signup_existing(link: &str) -> anyhow::Result<Rendered> {
    let subject = "Sign-up attempt for your Vortex account";
    render(
        subject,
        signup_existing::KEY,
        &signup_existing::Html { subject, link },
        &signup_existing::Text { subject, link },
    )
}

/// "Someone asked to move another account to your address" (to an address that already has an account, instead
/// of a confirmation link: the requester is told the same as for a free address).
///
/// # Errors
/// Template rendering errors.
pub fn email_change_taken(link: &str) -> anyhow::Result<Rendered> {
    let subject = "Request to use your email address on another Vortex account";
    render(
        subject,
        email_change_taken::KEY,
        &email_change_taken::Html { subject, link },
        &email_change_taken::Text { subject, link },
    )
}

/// "Confirm your new email address" (to the new address; carries no name, like [`verify`]).
///
/// # Errors
/// Template rendering errors.
pub fn confirm_email_change(link: &str) -> anyhow::Result<Rendered> {
    let subject = "Confirm the new email address of your Vortex account";
    render(
        subject,
        confirm_email_change::KEY,
        &confirm_email_change::Html { subject, link },
        &confirm_email_change::Text { subject, link },
    )
}

/// "Your email address was changed" (the security notice to the old address; `new_address` masked, `link` the
/// forgot-password page).
///
/// # Errors
/// Template rendering errors.
pub fn email_changed(new_address: &str, link: &str) -> anyhow::Result<Rendered> {
    let subject = "The email address of your Vortex account was changed";
    render(
        subject,
        email_changed::KEY,
        &email_changed::Html {
            subject,
            new_address,
            link,
        },
        &email_changed::Text {
            subject,
            new_address,
            link,
        },
    )
}

/// "Your request for an account was approved" (sign-up approval; `link` the sign-in page).
///
/// # Errors
/// Template rendering errors.
pub fn signup_approved(link: &str) -> anyhow::Result<Rendered> {
    let subject = "Your Vortex account was approved";
    render(
        subject,
        signup_approved::KEY,
        &signup_approved::Html { subject, link },
        &signup_approved::Text { subject, link },
    )
}

/// "Your request for an account was not approved", with the administrator's `reason` and the day (`reapply`)
/// the address may apply again.
///
/// # Errors
/// Template rendering errors.
pub fn signup_rejected(reason: &str, reapply: &str) -> anyhow::Result<Rendered> {
    let subject = "Your Vortex account request was not approved";
    render(
        subject,
        signup_rejected::KEY,
        &signup_rejected::Html {
            subject,
            reason,
            reapply,
        },
        &signup_rejected::Text {
            subject,
            reason,
            reapply,
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_render_both_parts_and_escape_names() {
        let r = super::reset("<b>Ann</b>", "https://v.example/verify-email?token=abc").unwrap();
        assert!(
            !r.html.contains("<b>Ann") && r.html.contains("&#60;b&#62;Ann"),
            "{}",
            r.html
        );
        assert!(
            r.html
                .contains("href=\"https://v.example/verify-email?token=abc\"")
        );
        assert!(r.text.contains("https://v.example/verify-email?token=abc"));
        assert!(
            r.text.contains("<b>Ann</b>"),
            "plain text is not HTML-escaped"
        );
        assert!(!r.text.contains("&#60;"));
    }
}
