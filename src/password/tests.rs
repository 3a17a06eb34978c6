use super::*;

/// Work on a hashing thread that runs until the test lets it finish, and the
/// switch that does.
fn held_work() -> (impl FnOnce() + Send + 'static, std::sync::mpsc::Sender<()>) {
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    let work = move || {
        let _ = finished.recv();
    };
    (work, finish)
}

/// Waits (5 s at most) until the hasher's load is `load`: hashes running, and
/// requests queued for a slot.
async fn until_load(hasher: &Hasher, load: (usize, usize)) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hasher.load() != load {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load stayed {:?}, not {load:?}",
            hasher.load()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

type Task = tokio::task::JoinHandle<Result<(), HashError>>;

/// A hasher with its one slot held and its queue full.
struct Full {
    /// The held hash, which ends once `finish` is sent.
    running: Task,
    finish: std::sync::mpsc::Sender<()>,
    waiters: Vec<Task>,
}

async fn fill(hasher: &Hasher) -> Full {
    let (work, finish) = held_work();
    let running = tokio::spawn({
        let hasher = hasher.clone();
        async move { hasher.run(work).await }
    });
    until_load(hasher, (1, 0)).await;
    let waiters = (0..QUEUE_PER_SLOT)
        .map(|_| {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(|| ()).await })
        })
        .collect();
    until_load(hasher, (1, QUEUE_PER_SLOT)).await;
    Full {
        running,
        finish,
        waiters,
    }
}

#[tokio::test]
async fn a_caller_that_hangs_up_keeps_its_slot_until_the_hash_finishes() {
    let hasher = Hasher::new(1, PasswordScheme::Argon2id);
    let (work, finish) = held_work();
    let running = tokio::spawn({
        let hasher = hasher.clone();
        async move { hasher.run(work).await }
    });
    until_load(&hasher, (1, 0)).await;

    running.abort();
    let _ = running.await;

    assert_eq!(
        hasher.load(),
        (1, 0),
        "the hash still runs and holds the slot"
    );
    finish.send(()).unwrap();
    let next = hasher.run(|| ()).await;
    assert!(next.is_ok());
    assert_eq!(hasher.load(), (0, 0));
}

#[tokio::test]
async fn waiters_that_hang_up_give_their_place_in_the_queue_back() {
    let hasher = Hasher::new(1, PasswordScheme::Argon2id);
    let Full {
        running: busy,
        finish,
        waiters,
    } = fill(&hasher).await;
    assert!(
        matches!(hasher.run(|| ()).await, Err(HashError::Busy)),
        "queue full"
    );

    for waiter in waiters {
        waiter.abort();
        let _ = waiter.await;
    }

    assert_eq!(hasher.load(), (1, 0), "every place was given back");
    finish.send(()).unwrap();
    busy.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_hash_verifies_its_password_and_nothing_else() {
    let hasher = Hasher::new(1, PasswordScheme::Argon2id);
    let hash = hasher
        .hash(SecretString::from("correct horse"))
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    let verify = |password: &str, hash: &str| {
        hasher.verify(
            SecretString::from(password.to_string()),
            Some(hash.to_string()),
        )
    };
    assert!(verify("correct horse", &hash).await.unwrap());
    assert!(!verify("wrong horse", &hash).await.unwrap());
}

#[tokio::test]
async fn bcrypt_hashes_are_laravel_s_and_verify_beside_argon2() {
    let hasher = Hasher::new(1, PasswordScheme::Bcrypt);
    let hash = hasher.hash(SecretString::from("secret")).await.unwrap();
    assert!(hash.starts_with("$2y$12$"), "{hash}");
    assert_eq!(hash.len(), 60);
    let check =
        |password: &str, hash: &str| matches_hash(&SecretString::from(password.to_string()), hash);
    assert!(check("secret", &hash));
    assert!(!check("Secret", &hash));
    // Made by another bcrypt implementation (PHP's password_hash writes $2y$,
    // OpenBSD's $2b$): the same algorithm, so both verify.
    let other = bcrypt::hash_with_result("laravel", 10).unwrap();
    for version in [
        bcrypt::Version::TwoY,
        bcrypt::Version::TwoB,
        bcrypt::Version::TwoA,
    ] {
        let stored = other.format_for_version(version);
        assert!(check("laravel", &stored), "{stored}");
        assert!(!check("laravel!", &stored), "{stored}");
    }
    // An Argon2id hash still verifies when bcrypt is what new hashes get.
    let argon = hash_now(&SecretString::from("argon")).unwrap();
    assert!(
        hasher
            .verify(SecretString::from("argon"), Some(argon))
            .await
            .unwrap()
    );
}

#[test]
fn the_bcrypt_dummy_hash_costs_what_a_real_one_costs() {
    assert!(DUMMY_BCRYPT_HASH.starts_with("$2y$12$"));
    assert_eq!(DUMMY_BCRYPT_HASH.len(), 60);
    assert!(
        bcrypt::verify("anything", DUMMY_BCRYPT_HASH).is_ok(),
        "it parses"
    );
    assert!(!matches_hash(
        &SecretString::from("anything"),
        DUMMY_BCRYPT_HASH
    ));
}

#[tokio::test]
async fn an_unknown_user_never_verifies() {
    let verified = Hasher::new(1, PasswordScheme::Argon2id)
        .verify(SecretString::from("anything"), None)
        .await
        .unwrap();
    assert!(!verified);
}

#[test]
fn hashes_are_interchangeable_with_argon2_s_own() {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};
    let password = SecretString::from("correct horse");
    let theirs = Argon2::default()
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
    assert!(matches_hash(&password, &theirs));
    assert!(!matches_hash(&SecretString::from("wrong horse"), &theirs));

    let ours = hash_now(&password).unwrap();
    assert!(
        ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{ours}"
    );
    let parsed = PasswordHash::new(&ours).unwrap();
    assert!(
        Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok()
    );
    assert!(
        Argon2::default()
            .verify_password(b"wrong horse", &parsed)
            .is_err()
    );
}

#[test]
fn the_dummy_hash_costs_what_a_real_hash_costs() {
    // A malformed dummy would fail at once and tell unknown emails apart by time.
    let dummy = argon2::PasswordHash::new(DUMMY_HASH).expect("the dummy hash parses");
    let real_hash = hash_now(&SecretString::from("x")).unwrap();
    assert!(!matches_hash(&SecretString::from("x"), DUMMY_HASH));
    let real = argon2::PasswordHash::new(&real_hash).unwrap();
    assert_eq!(dummy.algorithm, real.algorithm);
    assert_eq!(dummy.params, real.params);
    assert!(dummy.hash.is_some_and(|h| h.len() == 32));
}

#[tokio::test]
async fn beyond_the_slots_and_the_queue_callers_are_turned_away_at_once() {
    let hasher = Hasher::new(1, PasswordScheme::Argon2id);
    // Hold the only slot, then fill the queue with waiters.
    let held = hasher.slots.clone().try_acquire_owned().unwrap();
    let waiters: Vec<_> = (0..QUEUE_PER_SLOT)
        .map(|_| {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.slot().await.map(drop) })
        })
        .collect();
    while hasher.waiting.load(Ordering::SeqCst) < QUEUE_PER_SLOT {
        tokio::task::yield_now().await;
    }

    let started = std::time::Instant::now();
    let refused = hasher.hash(SecretString::from("x")).await;

    assert!(matches!(refused, Err(HashError::Busy)));
    assert!(started.elapsed() < Duration::from_millis(500));
    drop(held);
    for waiter in waiters {
        assert!(waiter.await.unwrap().is_ok(), "queued callers get a slot");
    }
}

#[tokio::test]
async fn a_caller_turned_away_is_counted_for_the_metrics() {
    // This test's own recorder (on this thread, which runs the test's tasks), so
    // other tests' refusals cannot count here.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let busy_total = || {
        metrics
            .render()
            .lines()
            .find_map(|line| line.strip_prefix("stripe_sync_password_hasher_busy_total "))
            .map_or(0.0, |value| value.parse::<f64>().unwrap())
    };
    let hasher = Hasher::new(1, PasswordScheme::Argon2id);
    let Full {
        running,
        finish,
        waiters,
    } = fill(&hasher).await;
    assert_eq!(busy_total(), 0.0);

    assert!(matches!(hasher.run(|| ()).await, Err(HashError::Busy)));

    assert_eq!(busy_total(), 1.0, "the 503 is counted, once");
    finish.send(()).unwrap();
    running.await.unwrap().unwrap();
    for waiter in waiters {
        waiter.await.unwrap().unwrap();
    }
}
