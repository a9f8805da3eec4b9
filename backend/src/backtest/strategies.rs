//! A trader's strategies. A strategy is a name plus a list of immutable versions; saving changed source adds
//! a version, so a run always points at the exact source it ran. Source that does not compile is never a
//! version: it is kept as the strategy's draft (so the trader does not lose the edit) until fixed or dropped.

use chrono::{DateTime, Utc};
use engine::strategy::ParamInfo;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{Error, compile};

/// Longest strategy name (characters).
pub const MAX_NAME: usize = 80;
/// The [`Error::Conflict`] message of a save refused because another tab wrote the draft meanwhile.
pub const STALE_DRAFT: &str = "the draft was changed in another tab or window after this page was opened; \
     reload to see it (this edit was not stored)";
/// Longest description (characters).
pub const MAX_DESCRIPTION: usize = 2000;

/// A strategy in a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StrategySummary {
    pub strategy_id: Uuid,
    pub name: String,
    pub description: String,
    pub template: Option<String>,
    pub latest_version: i32,
    pub archived: bool,
    pub has_draft: bool,
    pub runs: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One saved version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    pub strategy_version_id: Uuid,
    pub strategy_id: Uuid,
    pub version: i32,
    pub source: String,
    pub source_hash: String,
    pub params: Vec<ParamInfo>,
    pub created_at: DateTime<Utc>,
}

/// A strategy with its newest version, its draft and the list of versions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StrategyDetail {
    pub summary: StrategySummary,
    pub latest: Version,
    pub draft_source: Option<String>,
    /// The draft slot's revision: bumped by every write of the draft; a save carries the one its page showed
    /// ([`SaveStrategy::draft_rev`]).
    pub draft_rev: i32,
    /// `(version, created_at)`, newest first.
    pub versions: Vec<(i32, DateTime<Utc>)>,
}

/// What a new strategy starts from.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewStrategy {
    /// Defaults to the template's name, or "Untitled strategy".
    pub name: Option<String>,
    pub description: Option<String>,
    /// A catalogue template (`sma_cross`, `macd`, …); ignored when `source` is given.
    pub template: Option<String>,
    pub source: Option<String>,
}

/// An edit.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SaveStrategy {
    pub name: Option<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    /// The version the edit was based on; a save based on an older one is refused (someone saved meanwhile).
    pub base_version: Option<i32>,
    /// The draft revision the edit's page showed ([`StrategyDetail::draft_rev`]). A refused edit is kept as
    /// the draft only when this is still the current revision, so a refused save from a stale page never
    /// overwrites a newer draft (`None`, for API clients that do not send it: the last write wins).
    #[serde(default)]
    pub draft_rev: Option<i32>,
}

/// What a save did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Saved {
    pub version: i32,
    /// Whether the save added a version (false when only the name or description changed).
    pub new_version: bool,
}

/// Checks a source: its declared parameters, or every problem.
///
/// # Errors
/// [`Error::Strategy`].
pub fn validate(source: &str) -> Result<Vec<ParamInfo>, Error> {
    Ok(compile(source, &[])?.params().to_vec())
}

fn clean_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("name", "give the strategy a name"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Error::invalid(
            "name",
            format!("at most {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn clean_description(d: &str) -> Result<String, Error> {
    let d = d.trim();
    if d.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(Error::invalid(
            "description",
            "must not contain control characters",
        ));
    }
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(d.to_owned())
}

/// Refuses source text that cannot be stored or compiled at all: too long, or with a NUL character.
fn check_source_text(src: &str) -> Result<(), Error> {
    let max = engine::strategy::limits::MAX_SOURCE_BYTES;
    if src.len() > max {
        return Err(Error::invalid(
            "source",
            format!("the source is {} bytes; the limit is {max}", src.len()),
        ));
    }
    if let Some(at) = src.find('\0') {
        let line = src[..at].matches('\n').count() + 1;
        return Err(Error::invalid(
            "source",
            format!("line {line} contains a NUL character; remove it"),
        ));
    }
    Ok(())
}

/// Creates a strategy with version 1.
///
/// # Errors
/// [`Error::Invalid`] (name, unknown template), [`Error::Strategy`] (source), database errors.
pub async fn create(db: &PgPool, user: Uuid, new: NewStrategy) -> Result<Uuid, Error> {
    create_within(db, user, new, Quota::UNLIMITED).await
}

/// Per-user bounds on stored strategies (`STRATEGY_QUOTA`) and versions (`STRATEGY_VERSION_QUOTA`), checked
/// under a lock on the user's row so parallel requests cannot overshoot them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub strategies: i64,
    pub versions: i64,
}

impl Quota {
    /// No bounds (operator tools, tests).
    pub const UNLIMITED: Self = Self {
        strategies: i64::MAX,
        versions: i64::MAX,
    };

    pub fn from_settings(s: &crate::settings::Settings) -> Self {
        Self {
            strategies: s.backtest.strategy_quota,
            versions: s.backtest.version_quota,
        }
    }
}

/// Refuses a new strategy when the user has `quota.strategies` strategies or `quota.versions` versions;
/// locks the user's row until the transaction ends.
async fn check_new_strategy(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    quota: Quota,
) -> Result<(), Error> {
    sqlx::query("select 1 from app_user where user_id = $1 for update")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let (strategies, versions): (i64, i64) = sqlx::query_as(
        r#"select (select count(*) from strategy where user_id = $1),
                  (select count(*) from strategy_version v join strategy s using (strategy_id)
                   where s.user_id = $1)"#,
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    if strategies >= quota.strategies {
        return Err(Error::Limit(format!(
            "you have {strategies} strategies, the most an account may keep"
        )));
    }
    if versions >= quota.versions {
        return Err(Error::Limit(format!(
            "you have {versions} saved versions, the most an account may keep"
        )));
    }
    Ok(())
}

/// [`create`] within the user's [`Quota`].
///
/// # Errors
/// As [`create`], and [`Error::Limit`] when over the quota.
pub async fn create_within(
    db: &PgPool,
    user: Uuid,
    new: NewStrategy,
    quota: Quota,
) -> Result<Uuid, Error> {
    let (source, template) = match (&new.source, &new.template) {
        (Some(s), _) => (s.clone(), None),
        (None, Some(t)) => {
            let t = engine::catalogue::template(t.trim()).ok_or_else(|| {
                let names: Vec<&str> = engine::catalogue::templates()
                    .iter()
                    .map(|t| t.name)
                    .collect();
                Error::invalid(
                    "template",
                    format!("unknown template `{t}`; choose one of {}", names.join(", ")),
                )
            })?;
            (t.source.to_owned(), Some(t.name.to_owned()))
        }
        (None, None) => (blank_source().to_owned(), None),
    };
    let name = clean_name(
        new.name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .or(template.as_deref())
            .unwrap_or("Untitled strategy"),
    )?;
    let description = clean_description(new.description.as_deref().unwrap_or(""))?;
    check_source_text(&source)?;
    let compiled = compile(&source, &[])?;
    let id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    check_new_strategy(&mut tx, user, quota).await?;
    sqlx::query(
        "insert into strategy (strategy_id, user_id, name, description, template) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(user)
    .bind(&name)
    .bind(&description)
    .bind(&template)
    .execute(&mut *tx)
    .await?;
    insert_version(&mut tx, id, 1, &compiled).await?;
    tx.commit().await?;
    Ok(id)
}

/// The source a strategy "from scratch" starts with: valid, small, and showing each part of the language.
pub fn blank_source() -> &'static str {
    "# A new strategy. Declare parameters, name series, then write entry and exit rules.\n\
     param fast: int = 10 in 2..100\n\
     param slow: int = 30 in 5..400\n\
     \n\
     let fast_ma = sma(close, fast)\n\
     let slow_ma = sma(close, slow)\n\
     \n\
     entry long when crosses_above(fast_ma, slow_ma)\n\
     exit long when crosses_below(fast_ma, slow_ma)\n"
}

async fn insert_version(
    conn: &mut sqlx::PgConnection,
    strategy_id: Uuid,
    version: i32,
    compiled: &engine::strategy::CompiledStrategy,
) -> Result<(), Error> {
    sqlx::query(
        r#"insert into strategy_version (strategy_version_id, strategy_id, version, source, source_hash, params)
           values ($1, $2, $3, $4, $5, $6)"#,
    )
    .bind(Uuid::new_v4())
    .bind(strategy_id)
    .bind(version)
    .bind(compiled.source())
    .bind(compiled.source_hash())
    .bind(sqlx::types::Json(compiled.params()))
    .execute(conn)
    .await?;
    Ok(())
}

const SUMMARY_SQL: &str = r#"
    select s.strategy_id, s.name, s.description, s.template, s.latest_version, s.archived_at is not null as archived,
           s.draft_source is not null as has_draft, s.created_at, s.updated_at,
           (select count(*) from backtest_run r where r.strategy_id = s.strategy_id) as runs
    from strategy s"#;

fn summary(r: &sqlx::postgres::PgRow) -> Result<StrategySummary, sqlx::Error> {
    Ok(StrategySummary {
        strategy_id: r.try_get("strategy_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        template: r.try_get("template")?,
        latest_version: r.try_get("latest_version")?,
        archived: r.try_get("archived")?,
        has_draft: r.try_get("has_draft")?,
        runs: r.try_get("runs")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The user's strategies, most recently changed first.
///
/// # Errors
/// Database errors.
pub async fn list(
    db: &PgPool,
    user: Uuid,
    include_archived: bool,
) -> Result<Vec<StrategySummary>, Error> {
    let rows = sqlx::query(&format!(
        "{SUMMARY_SQL} where s.user_id = $1 and ($2 or s.archived_at is null) order by s.updated_at desc, s.name"
    ))
    .bind(user)
    .bind(include_archived)
    .fetch_all(db)
    .await?;
    Ok(rows.iter().map(summary).collect::<Result<_, _>>()?)
}

/// One strategy with its newest version.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn get(db: &PgPool, user: Uuid, id: Uuid) -> Result<StrategyDetail, Error> {
    let row = sqlx::query(&format!(
        "{SUMMARY_SQL} where s.user_id = $1 and s.strategy_id = $2"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    let summary = summary(&row)?;
    let (draft_source, draft_rev): (Option<String>, i32) =
        sqlx::query_as("select draft_source, draft_rev from strategy where strategy_id = $1")
            .bind(id)
            .fetch_one(db)
            .await?;
    let latest = version(db, user, id, None).await?;
    let versions = sqlx::query_as::<_, (i32, DateTime<Utc>)>(
        "select version, created_at from strategy_version where strategy_id = $1 order by version desc",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(StrategyDetail {
        summary,
        latest,
        draft_source,
        draft_rev,
        versions,
    })
}

/// A version of the user's strategy (`None` = the newest).
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn version(
    db: &PgPool,
    user: Uuid,
    strategy_id: Uuid,
    version: Option<i32>,
) -> Result<Version, Error> {
    let row = sqlx::query(
        r#"select v.strategy_version_id, v.strategy_id, v.version, v.source, v.source_hash, v.params, v.created_at
           from strategy_version v join strategy s using (strategy_id)
           where s.user_id = $1 and v.strategy_id = $2 and v.version = coalesce($3, s.latest_version)"#,
    )
    .bind(user)
    .bind(strategy_id)
    .bind(version)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    version_from_row(&row).map_err(Error::from)
}

pub(crate) fn version_from_row(r: &sqlx::postgres::PgRow) -> Result<Version, sqlx::Error> {
    let params: sqlx::types::Json<Vec<ParamInfo>> = r.try_get("params")?;
    Ok(Version {
        strategy_version_id: r.try_get("strategy_version_id")?,
        strategy_id: r.try_get("strategy_id")?,
        version: r.try_get("version")?,
        source: r.try_get("source")?,
        source_hash: r.try_get("source_hash")?,
        params: params.0,
        created_at: r.try_get("created_at")?,
    })
}

/// Saves an edit: a new version when the source changed and compiles (refused when the user already has
/// `quota.versions` versions in all), and the name and description.
///
/// A save is all or nothing: on any refusal (invalid name or description, archived, stale `base_version`,
/// source that does not compile, quota) neither the name, the description nor a version is stored. The
/// only thing a refusal may store is the edit's source as the draft, and only by compare-and-swap on the
/// draft slot's revision ([`SaveStrategy::draft_rev`]): when another tab wrote the draft since this page was
/// opened, the refusal says so and stores nothing.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Invalid`], [`Error::Conflict`], [`Error::Strategy`], [`Error::Limit`];
/// database errors.
pub async fn save(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    edit: SaveStrategy,
    quota: Quota,
) -> Result<Saved, Error> {
    if let Some(src) = &edit.source {
        check_source_text(src)?;
    }
    let name = edit.name.as_deref().map(clean_name).transpose();
    let description = edit
        .description
        .as_deref()
        .map(clean_description)
        .transpose();
    let mut tx = db.begin().await?;
    let (latest, archived, draft_rev): (i32, bool, i32) = sqlx::query_as(
        r#"select latest_version, archived_at is not null, draft_rev
           from strategy where strategy_id = $1 and user_id = $2 for update"#,
    )
    .bind(id)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    // Whether this edit may write the draft slot: it saw the current draft. Without a revision (API
    // clients that do not send one) the last write wins, as before.
    let draft_current = edit.draft_rev.is_none_or(|rev| rev == draft_rev);
    let stale_draft = || Error::Conflict(STALE_DRAFT.into());
    let refusal = match (&name, &description) {
        (Err(e), _) | (_, Err(e)) => Some(Error::invalid(
            match e {
                Error::Invalid { field, .. } => field,
                _ => "name",
            },
            e.message(),
        )),
        _ if archived => Some(Error::Conflict(
            "this strategy is archived; restore it before editing".into(),
        )),
        _ => match edit.base_version {
            Some(base) if base != latest => Some(Error::Conflict(format!(
                "version {latest} was saved after the version {base} you edited; reload to see it"
            ))),
            _ => None,
        },
    };
    if let Some(refusal) = refusal {
        // Nothing typed is lost: a refused edit's source is kept as the draft (unless it equals the newest
        // version), shown with the refusal until it is saved or discarded; but never over a newer draft.
        if let Some(source) = &edit.source {
            if !draft_current {
                return Err(stale_draft());
            }
            write_draft(&mut tx, id, source, latest).await?;
            tx.commit().await?;
        }
        return Err(refusal);
    }
    let (name, description) = (name?, description?);
    let mut outcome = Saved {
        version: latest,
        new_version: false,
    };
    if let Some(source) = &edit.source {
        let current: String = sqlx::query_scalar(
            "select source from strategy_version where strategy_id = $1 and version = $2",
        )
        .bind(id)
        .bind(latest)
        .fetch_one(&mut *tx)
        .await?;
        match compile(source, &[]) {
            Err(e) => {
                // Neither name nor description is stored with source that does not compile.
                if !draft_current {
                    return Err(stale_draft());
                }
                write_draft(&mut tx, id, source, latest).await?;
                tx.commit().await?;
                return Err(e);
            }
            Ok(compiled) => {
                if compiled.source() != current {
                    let versions: i64 = sqlx::query_scalar(
                        r#"select count(*) from strategy_version v join strategy s using (strategy_id)
                           where s.user_id = $1"#,
                    )
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?;
                    if versions >= quota.versions {
                        return Err(Error::Limit(format!(
                            "you have {versions} saved versions, the most an account may keep"
                        )));
                    }
                    insert_version(&mut tx, id, latest + 1, &compiled).await?;
                    sqlx::query("update strategy set latest_version = $2 where strategy_id = $1")
                        .bind(id)
                        .bind(latest + 1)
                        .execute(&mut *tx)
                        .await?;
                    outcome = Saved {
                        version: latest + 1,
                        new_version: true,
                    };
                }
                sqlx::query(
                    r#"update strategy set draft_source = null,
                           draft_rev = draft_rev + case when draft_source is null then 0 else 1 end
                       where strategy_id = $1"#,
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    sqlx::query(
        "update strategy set name = coalesce($2, name), description = coalesce($3, description) where strategy_id = $1",
    )
    .bind(id)
    .bind(&name)
    .bind(&description)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Stores `source` as the strategy's draft and bumps the draft revision (a source equal to the newest
/// version is not a draft: the slot is left alone).
async fn write_draft(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    source: &str,
    latest: i32,
) -> Result<(), Error> {
    sqlx::query(
        r#"update strategy s set draft_source = $2, draft_rev = draft_rev + 1
           where s.strategy_id = $1
             and $2 <> (select source from strategy_version v where v.strategy_id = $1 and v.version = $3)"#,
    )
    .bind(id)
    .bind(source)
    .bind(latest)
    .execute(tx)
    .await?;
    Ok(())
}

/// Drops the unsaved draft.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn discard_draft(db: &PgPool, user: Uuid, id: Uuid) -> Result<(), Error> {
    let n = sqlx::query(
        r#"update strategy set draft_source = null,
               draft_rev = draft_rev + case when draft_source is null then 0 else 1 end
           where strategy_id = $1 and user_id = $2"#,
    )
    .bind(id)
    .bind(user)
    .execute(db)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Copies the newest version into a new strategy ("<name> (copy)").
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn duplicate(db: &PgPool, user: Uuid, id: Uuid, quota: Quota) -> Result<Uuid, Error> {
    let detail = get(db, user, id).await?;
    let mut name = format!("{} (copy)", detail.summary.name);
    if name.chars().count() > MAX_NAME {
        name = name.chars().take(MAX_NAME).collect();
    }
    create_within(
        db,
        user,
        NewStrategy {
            name: Some(name),
            description: Some(detail.summary.description),
            template: None,
            source: Some(detail.latest.source),
        },
        quota,
    )
    .await
}

/// Archives (hides from the list, refuses new runs) or restores a strategy. Its runs stay.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn set_archived(db: &PgPool, user: Uuid, id: Uuid, archived: bool) -> Result<(), Error> {
    let n = sqlx::query(
        r#"update strategy set archived_at = case when $3 then coalesce(archived_at, now()) else null end
           where strategy_id = $1 and user_id = $2"#,
    )
    .bind(id)
    .bind(user)
    .bind(archived)
    .execute(db)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}
