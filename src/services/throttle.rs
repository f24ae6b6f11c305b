//! Sign-in throttling in the database (`login_throttles`), so it holds across requests and processes.
//! Every password check is counted *before* it runs, by one atomic upsert per scope that refuses while
//! the scope's delay runs: 32 guesses sent at once cannot all slip past a check made before any of them
//! is recorded. A success gives the count back; the numbers are in `domain::throttle`.

use chrono::Utc;
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter};

use entities::login_throttle::{Column as C, Entity as T};

use super::ServiceError;
use crate::domain::throttle::{ACCOUNT, ADDRESS, FORGOTTEN_AFTER_MS, PAIR, Policy, retry_after_secs};

/// One counted attempt of `account` from an address. Dropping it leaves the attempt counted as a
/// failure, so a path that forgets to report its outcome errs on the safe side.
#[must_use = "an attempt is a failure unless it is reported as a success or given back"]
pub struct Attempt {
    pair: String,
    account: String,
    /// Whether this attempt counted against the account (not when its pair was already slowed down).
    account_counted: bool,
    address: String,
}

/// Counts an attempt of `account` (a proxdesk user name, or the name typed for an outside identity)
/// from `client_addr` against the pair, the account and the address, or refuses with `Throttled` (then
/// nothing is counted) while one of them must still wait. Call before checking the password.
pub async fn attempt(db: &DatabaseConnection, account: &str, client_addr: &str) -> Result<Attempt, ServiceError> {
    let now = Utc::now().timestamp_millis();
    let account = account.trim().to_lowercase();
    let pair = format!("pair:{account}|{client_addr}");
    let user = format!("user:{account}");
    let address = format!("addr:{client_addr}");
    let txn = crate::db::begin_write(db).await?;
    // Always pair, then account, then address: two transactions never wait on each other's rows in turn.
    let Some(pair_failures) = count(&txn, &pair, &PAIR, now).await? else {
        return refuse(db, txn, &pair, now).await;
    };
    // An address its pair already slows down adds nothing account-wide, so one guesser, however patient,
    // never makes the real person wait.
    let account_counted = pair_failures <= PAIR.free;
    if account_counted && count(&txn, &user, &ACCOUNT, now).await?.is_none() {
        return refuse(db, txn, &user, now).await;
    }
    if count(&txn, &address, &ADDRESS, now).await?.is_none() {
        return refuse(db, txn, &address, now).await;
    }
    txn.commit().await?;
    forget_quiet_scopes(db, now).await?;
    Ok(Attempt { pair, account: user, account_counted, address })
}

impl Attempt {
    /// The credentials were right: the pair and the account start over; the address gets this attempt
    /// back (it stays counted by its other failures, so signing in to one's own account between guesses
    /// does not wipe an address's record).
    pub async fn succeeded(self, db: &DatabaseConnection) -> Result<(), ServiceError> {
        T::delete_many().filter(C::Scope.is_in([self.pair, self.account])).exec(db).await?;
        give_back(db, [self.address]).await
    }

    /// The attempt says nothing about the person (the provider did not answer, or the password was
    /// right and a second factor follows): every scope gets it back. The delay it set is left to run.
    pub async fn give_back(self, db: &DatabaseConnection) -> Result<(), ServiceError> {
        let account = Some(self.account).filter(|_| self.account_counted);
        give_back(db, [Some(self.pair), account, Some(self.address)].into_iter().flatten()).await
    }
}

/// Counts one attempt in `scope` unless its delay still runs: the new count, or `None` when refused.
/// One statement: the condition, the increment and the next delay are decided together by the database.
async fn count(txn: &DatabaseTransaction, scope: &str, policy: &Policy, now: i64) -> Result<Option<i64>, ServiceError> {
    let col = |c: C| Expr::col((T, c));
    let forgotten = col(C::LastAtMs).lt(now - policy.forget_after_ms);
    let failures = Expr::case(forgotten.clone(), 1i64).finally(col(C::Failures).add(1i64));
    let next_at = Expr::case(forgotten, now + policy.delay_after(1))
        .finally(Expr::val(now).add(delay_sql(policy, col(C::Failures).add(1i64))));
    let stmt = Query::insert()
        .into_table(T)
        .columns([C::Scope, C::Failures, C::NextAtMs, C::LastAtMs])
        .values_panic([scope.into(), 1i64.into(), (now + policy.delay_after(1)).into(), now.into()])
        .on_conflict(
            OnConflict::column(C::Scope)
                .value(C::Failures, failures)
                .value(C::NextAtMs, next_at)
                .value(C::LastAtMs, now)
                .action_and_where(col(C::NextAtMs).lte(now))
                .to_owned(),
        )
        .returning_col(C::Failures)
        .to_owned();
    let row = txn.query_one_raw(txn.get_database_backend().build(&stmt)).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "failures")).transpose()?)
}

/// `policy`'s delay after `failures` (an SQL expression), as `Policy::delay_after` computes it.
fn delay_sql(policy: &Policy, failures: Expr) -> Expr {
    let ladder = policy
        .steps()
        .into_iter()
        .fold(CaseStatement::new().case(failures.clone().lt(policy.free), 0i64), |case, (n, delay)| {
            case.case(failures.clone().eq(n), delay)
        });
    ladder.finally(policy.max_delay_ms).into()
}

/// Nothing of this attempt is counted; the wait announced is the refusing scope's.
async fn refuse(
    db: &DatabaseConnection,
    txn: DatabaseTransaction,
    scope: &str,
    now: i64,
) -> Result<Attempt, ServiceError> {
    txn.rollback().await?;
    let next_at = T::find_by_id(scope).one(db).await?.map(|r| r.next_at_ms).unwrap_or(now);
    tracing::info!(%scope, "sign-in attempt refused: too many failures");
    Err(ServiceError::Throttled { retry_after_secs: retry_after_secs(next_at - now) })
}

/// Rows every policy has forgotten go, so guesses from ever new addresses and names cannot grow the table
/// without bound: one indexed delete per counted attempt, usually of nothing.
async fn forget_quiet_scopes(db: &DatabaseConnection, now: i64) -> Result<(), ServiceError> {
    T::delete_many().filter(C::LastAtMs.lt(now - FORGOTTEN_AFTER_MS)).exec(db).await?;
    Ok(())
}

async fn give_back(db: &DatabaseConnection, scopes: impl IntoIterator<Item = String>) -> Result<(), ServiceError> {
    let scopes: Vec<String> = scopes.into_iter().collect();
    T::update_many()
        .col_expr(C::Failures, Expr::col(C::Failures).sub(1i64))
        .filter(C::Scope.is_in(scopes))
        .filter(C::Failures.gt(0))
        .exec(db)
        .await?;
    Ok(())
}
