//! The strategy catalogue (docs/admin.md#strategy-catalogue): strategies that admins author in the database,
//! with immutable versions, published or hidden, featured or not; traders create their own strategies from the
//! published ones (a copy of the entry's newest version, recorded as `strategy.template` and
//! `template_version`). The seven built-in templates of `engine::catalogue` are seeded into it once each
//! ([`seed`]); the CLI's `run-strategy --template` keeps using the built-in sources directly.
//!
//! Readers (any signed-in user) see published entries; the admin actions list everything, create, edit (a
//! changed source is a new version), publish, hide and feature, each audited in the same transaction. Sources
//! are checked like any strategy (size, NUL, compile); entries are never deleted.

use chrono::{DateTime, Utc};
use engine::strategy::ParamInfo;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, types::Json};
use uuid::Uuid;

use super::{
    compile,
    strategies::{check_source_text, clean_description, clean_name},
};
use crate::{
    Actor, Ctx,
    error::{Error, Result, ResultExt},
};

/// Most entries an instance may have (hidden ones included).
pub const MAX_ENTRIES: i64 = 500;
/// Most versions one entry may have.
pub const MAX_VERSIONS: i32 = 1000;
/// Longest version note (characters).
pub const MAX_NOTE: usize = 500;
/// Longest slug (characters).
pub const MAX_SLUG: usize = 48;

/// A catalogue entry with its newest version.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    pub id: Uuid,
    /// The name traders and the API use to create from it (`template`).
    pub slug: String,
    pub name: String,
    pub description: String,
    pub published: bool,
    pub featured: bool,
    /// Seeded from a built-in template.
    pub builtin: bool,
    /// The newest version's number.
    pub version: i32,
    pub source: String,
    pub params: Vec<ParamInfo>,
    pub updated_at: DateTime<Utc>,
}

/// One saved version of an entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VersionInfo {
    pub version: i32,
    pub note: String,
    /// The admin who saved it (`None`: seeded, or the account was deleted).
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An entry as the admin console shows it: the newest version, every version (newest first) and how many
/// strategies were created from it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EntryDetail {
    pub entry: Entry,
    pub versions: Vec<VersionInfo>,
    pub strategies: i64,
}

/// A new entry, or the changes to one (`None` = unchanged; required on create: `slug`, `name`, `source`).
#[derive(Debug, Clone, Default)]
pub struct EntryInput {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// A changed source is saved as a new version (an unchanged one is not).
    pub source: Option<String>,
    /// What changed in this version (shown in the version list).
    pub note: Option<String>,
    pub published: Option<bool>,
    pub featured: Option<bool>,
}

/// What a trader's new strategy copies from the catalogue.
#[derive(Debug, Clone)]
pub struct Published {
    pub slug: String,
    pub name: String,
    pub version: i32,
    pub source: String,
}

struct Row {
    catalogue_id: Uuid,
    slug: String,
    name: String,
    description: String,
    published: bool,
    featured: bool,
    builtin: bool,
    latest_version: i32,
    source: String,
    params: Json<Vec<ParamInfo>>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Entry {
    fn from(r: Row) -> Self {
        Self {
            id: r.catalogue_id,
            slug: r.slug,
            name: r.name,
            description: r.description,
            published: r.published,
            featured: r.featured,
            builtin: r.builtin,
            version: r.latest_version,
            source: r.source,
            params: r.params.0,
            updated_at: r.updated_at,
        }
    }
}

/// The entries with their newest version, `$tail` (a `where …` and the order) appended.
macro_rules! select_entries {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Row,
            r#"
    select c.catalogue_id, c.slug, c.name, c.description, c.published, c.featured, c.builtin,
           c.latest_version, v.source, v.params as "params!: Json<Vec<ParamInfo>>", c.updated_at
      from catalogue_strategy c
      join catalogue_strategy_version v on v.catalogue_id = c.catalogue_id and v.version = c.latest_version
    "# + $tail
            $(, $arg)*
        )
    };
}

/// Runs the pending migrations ([`crate::db::migrate`]), then [`seed`]s the catalogue: what `vortex migrate` and
/// `vortex serve --migrate` do.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate_and_seed(db: &PgPool) -> std::result::Result<(), sqlx::migrate::MigrateError> {
    crate::db::migrate(db).await?;
    seed(db).await?;
    Ok(())
}

/// Seeds the built-in templates that are not in the catalogue yet (by slug), published; an entry an admin
/// edited or hid stays as it is. Runs after the migrations ([`migrate_and_seed`]); returns how many it added.
///
/// # Errors
/// Database errors.
pub async fn seed(db: &PgPool) -> std::result::Result<u64, sqlx::Error> {
    let mut added = 0;
    for t in engine::catalogue::templates() {
        let params = match super::strategies::validate(t.source) {
            Ok(p) => Json(p),
            Err(e) => {
                tracing::warn!(template = t.name, error = %e, "a built-in template does not compile; seeded without parameters");
                Json(Vec::new())
            }
        };
        let mut tx = db.begin().await?;
        let id = sqlx::query_scalar!(
            r#"insert into catalogue_strategy (catalogue_id, slug, name, description, published, builtin)
               values ($1, $2, $3, $4, true, true)
               on conflict (slug) do nothing
               returning catalogue_id"#,
            Uuid::new_v4(),
            t.name,
            builtin_name(t),
            t.description,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id {
            sqlx::query!(
                r#"insert into catalogue_strategy_version (catalogue_id, version, source, params, note)
                   values ($1, 1, $2, $3, 'built-in template')"#,
                id,
                t.source,
                params as _,
            )
            .execute(&mut *tx)
            .await?;
            added += 1;
        }
        tx.commit().await?;
    }
    Ok(added)
}

/// A built-in template's display name: its source's first comment line (`# SMA crossover`), or its slug.
fn builtin_name(t: &engine::catalogue::Template) -> String {
    t.source
        .lines()
        .next()
        .and_then(|l| l.strip_prefix('#'))
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.chars().count() <= super::strategies::MAX_NAME)
        .unwrap_or(t.name)
        .to_owned()
}

/// The published entries, featured first, then by name (any signed-in user).
///
/// # Errors
/// [`Error::Unauthenticated`], database errors.
pub async fn published(actor: &Actor, ctx: &Ctx) -> Result<Vec<Entry>> {
    actor.reader()?;
    let rows = select_entries!(
        "where c.published order by c.featured desc, c.name, c.slug limit $1",
        MAX_ENTRIES
    )
    .fetch_all(&ctx.db)
    .await?;
    Ok(rows.into_iter().map(Entry::from).collect())
}

/// A published entry without its source (the strategies page's list).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub featured: bool,
}

/// The published entries without their sources, featured first, then by name (any signed-in user).
///
/// # Errors
/// [`Error::Unauthenticated`], database errors.
pub async fn published_summaries(actor: &Actor, ctx: &Ctx) -> Result<Vec<Summary>> {
    actor.reader()?;
    Ok(sqlx::query_as!(
        Summary,
        r#"select slug, name, description, featured from catalogue_strategy
            where published order by featured desc, name, slug limit $1"#,
        MAX_ENTRIES
    )
    .fetch_all(&ctx.db)
    .await?)
}

/// Every entry, published ones first (admins only).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database errors.
pub async fn list(actor: &Actor, ctx: &Ctx) -> Result<Vec<Entry>> {
    actor.admin()?;
    let rows = select_entries!(
        "order by c.published desc, c.featured desc, c.name, c.slug limit $1",
        MAX_ENTRIES
    )
    .fetch_all(&ctx.db)
    .await?;
    Ok(rows.into_iter().map(Entry::from).collect())
}

/// One entry with its versions and use (admins only).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database errors.
pub async fn get(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<EntryDetail> {
    actor.admin()?;
    let mut conn = ctx.db.acquire().await?;
    detail(&mut conn, id).await
}

/// Most versions the detail lists (the newest).
pub const VERSIONS_SHOWN: i64 = 200;

async fn entry(conn: &mut PgConnection, id: Uuid) -> Result<Entry> {
    Ok(select_entries!("where c.catalogue_id = $1", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound)?
        .into())
}

async fn detail(conn: &mut PgConnection, id: Uuid) -> Result<EntryDetail> {
    let entry = entry(conn, id).await?;
    let versions = sqlx::query_as!(
        VersionInfo,
        r#"select v.version, v.note, u.email as "created_by?", v.created_at
             from catalogue_strategy_version v
             left join app_user u on u.user_id = v.created_by
            where v.catalogue_id = $1
            order by v.version desc
            limit $2"#,
        id,
        VERSIONS_SHOWN
    )
    .fetch_all(&mut *conn)
    .await?;
    let strategies = sqlx::query_scalar!(
        r#"select count(*) as "n!" from strategy where template = $1"#,
        entry.slug
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(EntryDetail {
        entry,
        versions,
        strategies,
    })
}

/// Whether `s` is a well-formed slug: 1 to [`MAX_SLUG`] lower-case ASCII letters, digits, `_` and `-`,
/// starting with a letter or digit.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn clean_slug(slug: &str) -> Result<String> {
    let s = slug.trim();
    if is_slug(s) {
        Ok(s.to_owned())
    } else {
        Err(Error::invalid(
            "slug",
            format!(
                "1 to {MAX_SLUG} characters: lower-case letters, digits, `_` and `-`, starting with a letter or digit"
            ),
        ))
    }
}

fn clean_note(note: &str) -> Result<String> {
    let n = note.trim();
    if n.chars().count() > MAX_NOTE {
        return Err(Error::invalid(
            "note",
            format!("at most {MAX_NOTE} characters"),
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(Error::invalid(
            "note",
            "must not contain control characters",
        ));
    }
    Ok(n.to_owned())
}

/// The source's check, as for a trader's strategy: its declared parameters, or every problem.
fn checked_source(source: &str) -> Result<(String, Vec<ParamInfo>)> {
    check_source_text(source)?;
    let compiled = compile(source, &[])?;
    Ok((compiled.source().to_owned(), compiled.params().to_vec()))
}

fn audit_detail(e: &Entry) -> serde_json::Value {
    serde_json::json!({
        "catalogue_id": e.id,
        "slug": e.slug,
        "name": e.name,
        "version": e.version,
        "published": e.published,
        "featured": e.featured,
    })
}

/// Creates an entry (version 1; hidden unless `published`); audited as `catalogue_created`.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (not an admin, read-only token), [`Error::Invalid`]
/// naming the field (a slug in use), [`Error::Strategy`] (the source does not compile), [`Error::Limit`]
/// ([`MAX_ENTRIES`]), database errors.
pub async fn create(actor: &Actor, ctx: &Ctx, input: &EntryInput) -> Result<Entry> {
    actor.admin_writer()?;
    let slug = clean_slug(
        input
            .slug
            .as_deref()
            .ok_or_else(|| Error::invalid("slug", "required"))?,
    )?;
    let name = clean_name(
        input
            .name
            .as_deref()
            .ok_or_else(|| Error::invalid("name", "required"))?,
    )?;
    let description = clean_description(input.description.as_deref().unwrap_or(""))?;
    let note = clean_note(input.note.as_deref().unwrap_or(""))?;
    let (source, params) = checked_source(
        input
            .source
            .as_deref()
            .ok_or_else(|| Error::invalid("source", "required"))?,
    )?;
    let id = Uuid::new_v4();
    let admin = actor.user_id();
    let mut tx = ctx.db.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended('catalogue', 0))")
        .execute(&mut *tx)
        .await?;
    let count = sqlx::query_scalar!(r#"select count(*) as "n!" from catalogue_strategy"#)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_ENTRIES {
        return Err(Error::Limit(format!(
            "the catalogue has {count} entries, the most an instance may keep; edit or reuse a hidden one"
        )));
    }
    sqlx::query!(
        r#"insert into catalogue_strategy (catalogue_id, slug, name, description, published, featured, created_by)
           values ($1, $2, $3, $4, $5, $6, $7)"#,
        id,
        slug,
        name,
        description,
        input.published.unwrap_or(false),
        input.featured.unwrap_or(false),
        admin,
    )
    .execute(&mut *tx)
    .await
    .on_constraint("catalogue_strategy_slug_key", || {
        Error::invalid("slug", "a catalogue strategy with this slug exists")
    })?;
    sqlx::query!(
        r#"insert into catalogue_strategy_version (catalogue_id, version, source, params, note, created_by)
           values ($1, 1, $2, $3, $4, $5)"#,
        id,
        source,
        Json(&params) as _,
        note,
        admin,
    )
    .execute(&mut *tx)
    .await?;
    let entry = entry(&mut tx, id).await?;
    actor
        .audit(&mut tx, "catalogue_created", None, audit_detail(&entry))
        .await?;
    tx.commit().await?;
    Ok(entry)
}

/// Changes an entry: name, description, published, featured, and the source (a new version when it
/// differs from the newest); the slug is fixed once created (strategies name it). Audited as
/// `catalogue_updated` with the entry before and after.
///
/// # Errors
/// As [`create`], [`Error::NotFound`], [`Error::Limit`] ([`MAX_VERSIONS`]).
pub async fn update(actor: &Actor, ctx: &Ctx, id: Uuid, input: &EntryInput) -> Result<Entry> {
    actor.admin_writer()?;
    let name = input.name.as_deref().map(clean_name).transpose()?;
    let description = input
        .description
        .as_deref()
        .map(clean_description)
        .transpose()?;
    let note = clean_note(input.note.as_deref().unwrap_or(""))?;
    let source = input.source.as_deref().map(checked_source).transpose()?;
    let admin = actor.user_id();
    let mut tx = ctx.db.begin().await?;
    let locked = sqlx::query_scalar!(
        "select catalogue_id from catalogue_strategy where catalogue_id = $1 for update",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if locked.is_none() {
        return Err(Error::NotFound);
    }
    let before = entry(&mut tx, id).await?;
    // The same slug again is fine (forms send every field); a different one is refused.
    if let Some(slug) = &input.slug
        && slug.trim() != before.slug
    {
        return Err(Error::invalid(
            "slug",
            "the slug cannot change once created (strategies name it); create a new entry instead",
        ));
    }
    let mut version = before.version;
    let new_source = source.as_ref().filter(|(s, _)| *s != before.source);
    if new_source.is_none() && !note.is_empty() {
        return Err(Error::invalid(
            "note",
            "a note describes a new version: change the source too, or leave the note empty",
        ));
    }
    let unchanged = new_source.is_none()
        && name.as_ref().is_none_or(|n| *n == before.name)
        && description
            .as_ref()
            .is_none_or(|d| *d == before.description)
        && input.published.is_none_or(|p| p == before.published)
        && input.featured.is_none_or(|f| f == before.featured);
    if unchanged {
        // Nothing to store or audit (a form saved as it was shown).
        return Ok(before);
    }
    if let Some((source, params)) = new_source {
        if before.version >= MAX_VERSIONS {
            return Err(Error::Limit(format!(
                "this entry has {} versions, the most one may keep; create a new entry",
                before.version
            )));
        }
        version = before.version + 1;
        sqlx::query!(
            r#"insert into catalogue_strategy_version (catalogue_id, version, source, params, note, created_by)
               values ($1, $2, $3, $4, $5, $6)"#,
            id,
            version,
            source,
            Json(params) as _,
            note,
            admin,
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        r#"update catalogue_strategy
              set name = coalesce($2, name), description = coalesce($3, description),
                  published = coalesce($4, published), featured = coalesce($5, featured),
                  latest_version = $6, updated_at = now()
            where catalogue_id = $1"#,
        id,
        name,
        description,
        input.published,
        input.featured,
        version,
    )
    .execute(&mut *tx)
    .await?;
    let after = entry(&mut tx, id).await?;
    actor
        .audit(
            &mut tx,
            "catalogue_updated",
            None,
            serde_json::json!({
                "catalogue_id": id,
                "before": audit_detail(&before),
                "after": audit_detail(&after),
                "new_version": after.version != before.version,
            }),
        )
        .await?;
    tx.commit().await?;
    Ok(after)
}

/// The newest version of a published entry, for a trader's new strategy.
///
/// # Errors
/// [`Error::Invalid`] on `template` naming the published entries when there is no such published entry,
/// database errors.
pub(crate) async fn resolve(conn: &mut PgConnection, slug: &str) -> Result<Published> {
    let slug = slug.trim().to_ascii_lowercase();
    let found = sqlx::query_as!(
        Published,
        r#"select c.slug, c.name, c.latest_version as version, v.source
             from catalogue_strategy c
             join catalogue_strategy_version v on v.catalogue_id = c.catalogue_id and v.version = c.latest_version
            where c.slug = $1 and c.published"#,
        slug
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(p) = found {
        return Ok(p);
    }
    let names = sqlx::query_scalar!(
        "select slug from catalogue_strategy where published order by featured desc, name, slug limit 50"
    )
    .fetch_all(&mut *conn)
    .await?;
    let shown: String = slug.chars().take(60).collect();
    Err(Error::invalid(
        "template",
        if names.is_empty() {
            format!("unknown template `{shown}`; the catalogue has no published strategies")
        } else {
            format!(
                "unknown template `{shown}`; choose one of {}",
                names.join(", ")
            )
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(clean_slug(" sma_cross ").unwrap(), "sma_cross");
        assert_eq!(clean_slug("trend-2").unwrap(), "trend-2");
        for bad in [
            "",
            "-x",
            "_x",
            "Upper",
            "with space",
            "ünï",
            &"a".repeat(MAX_SLUG + 1),
        ] {
            assert!(clean_slug(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn builtin_names_come_from_the_first_comment() {
        let t = engine::catalogue::template("sma_cross").unwrap();
        assert_eq!(builtin_name(t), "SMA crossover");
        for t in engine::catalogue::templates() {
            let n = builtin_name(t);
            assert!(!n.is_empty() && n.chars().count() <= 80, "{n}");
            assert!(clean_name(&n).is_ok());
            assert!(checked_source(t.source).is_ok(), "{} compiles", t.name);
        }
    }

    #[test]
    fn notes_are_bounded() {
        assert!(clean_note(&"n".repeat(MAX_NOTE)).is_ok());
        assert!(clean_note(&"n".repeat(MAX_NOTE + 1)).is_err());
        assert!(clean_note("a\u{7}b").is_err());
    }
}
