//! Services the tests need, started on loopback for the length of the test run and stopped
//! when the guard is dropped.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running local S3-compatible server (moto), killed on drop.
pub(crate) struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Starts `moto_server` from the venv on a free loopback port and waits until it accepts
/// connections.
pub(crate) fn start_s3(root: &Path) -> Result<S3Server, String> {
    let port = free_port()?;
    let bin = root.join(".venv/bin/moto_server");
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not start listening on port {port} within 30 s",
                bin.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("xtask: S3 server (moto) on {}", server.endpoint);
    Ok(server)
}

/// Creates `bucket` on the test S3 server at `endpoint` (`http://host:port`) with a plain
/// `PUT /<bucket>` (the server takes unsigned requests; `object_store` creates no buckets).
pub(crate) fn create_bucket(endpoint: &str, bucket: &str) -> Result<(), String> {
    use std::io::{Read as _, Write as _};
    let hostport = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("bucket creation needs an http:// endpoint, not {endpoint}"))?
        .trim_end_matches('/');
    let mut s = TcpStream::connect(hostport).map_err(|e| format!("{hostport}: {e}"))?;
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut resp = String::new();
    s.write_all(request.as_bytes())
        .and_then(|()| s.read_to_string(&mut resp))
        .map_err(|e| format!("creating bucket {bucket} at {endpoint}: {e}"))?;
    let status = resp.lines().next().unwrap_or_default();
    if status.contains(" 200") {
        Ok(())
    } else {
        Err(format!("creating bucket {bucket} at {endpoint}: {status}"))
    }
}

/// A one-node Slurm cluster on loopback (munged, slurmctld, slurmd from Debian), configured
/// under `target/slurm/` with this machine's cores; stopped on drop. Tests reach it through
/// `SLURM_CONF`.
pub(crate) struct SlurmCluster {
    dir: std::path::PathBuf,
    /// The cluster's `slurm.conf`.
    pub(crate) conf: std::path::PathBuf,
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        // Jobs first (their steps would outlive the daemons), then the daemons.
        let _ = Command::new("scancel")
            .args(["--full", "--user", "root"])
            .env("SLURM_CONF", &self.conf)
            .output();
        std::thread::sleep(Duration::from_millis(500));
        for pid_file in ["slurmd.pid", "slurmctld.pid", "munged.pid"] {
            if let Some(pid) = std::fs::read_to_string(self.dir.join(pid_file))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                let _ = Command::new("kill").arg(pid.to_string()).output();
            }
        }
    }
}

/// The first line of `hostname -s`.
fn short_hostname() -> Result<String, String> {
    let out = Command::new("hostname")
        .arg("-s")
        .output()
        .map_err(|e| format!("hostname: {e}"))?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if name.is_empty() {
        return Err("hostname -s printed nothing".into());
    }
    Ok(name)
}

/// Physical memory in MiB (`/proc/meminfo`).
fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(2048, |kib| kib / 1024)
}

/// Writes the configuration and starts munged, slurmctld and slurmd; returns once the node
/// is idle.
pub(crate) fn start_slurm(root: &Path) -> Result<SlurmCluster, String> {
    let dir = root.join("target/slurm");
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["state", "spool", "log"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let host = short_hostname()?;
    let key = dir.join("munge.key");
    let mut bytes = vec![0u8; 1024];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .and_then(|()| std::fs::write(&key, &bytes))
        .map_err(|e| format!("{}: {e}", key.display()))?;
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", key.display()))?;
    let d = dir.display();
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd
            .output()
            .map_err(|e| format!("cannot start {what}: {e} (Debian: slurmctld slurmd munge)"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    run(
        Command::new("munged").args([
            format!("--key-file={d}/munge.key"),
            format!("--socket={d}/munge.sock"),
            format!("--pid-file={d}/munged.pid"),
            format!("--log-file={d}/log/munged.log"),
            format!("--seed-file={d}/munge.seed"),
            "--force".into(),
        ]),
        "munged",
    )?;
    let ctld_port = free_port()?;
    let d_port = free_port()?;
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    // Half the memory for tasks: the test run itself needs the rest. The scheduler runs as
    // soon as a task ends (no batching delay): one task after another otherwise waits about
    // 2.7 s each on this one-node cluster, 1.1 s with these settings.
    let mem = mem_total_mib() / 2;
    let conf = format!(
        "ClusterName=strata-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0

SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
PlugStackConfig=/dev/null
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"
    );
    let conf_path = dir.join("slurm.conf");
    std::fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
    let cluster = SlurmCluster {
        dir: dir.clone(),
        conf: conf_path.clone(),
    };
    run(
        Command::new("slurmctld")
            .arg("-c")
            .env("SLURM_CONF", &conf_path),
        "slurmctld",
    )?;
    run(
        Command::new("slurmd").env("SLURM_CONF", &conf_path),
        "slurmd",
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("sinfo")
            .args(["--noheader", "--format=%T"])
            .env("SLURM_CONF", &conf_path)
            .output()
            .map_err(|e| format!("sinfo: {e}"))?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && state == "idle" {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("log/slurmctld.log")).unwrap_or_default();
            return Err(format!(
                "the Slurm node is not idle after 60 s (sinfo: {state:?}); slurmctld log:\n{log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "xtask: Slurm one-node cluster ({cpus} CPUs, {mem} MiB) with {}",
        conf_path.display()
    );
    Ok(cluster)
}
