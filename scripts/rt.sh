#!/usr/bin/env bash
# Brings a throw-away Request Tracker 5 (Debian's request-tracker5, rt5-db-sqlite,
# rt5-standalone) up and down, so the RT adapter is tested against the real system and not
# against an emulator of our own (issue 7; how this was worked out:
# ../shared/reference/rt/REQUEST-TRACKER.md).
#
#   scripts/rt.sh install      install the packages if missing (idempotent; CI runs it)
#   scripts/rt.sh up           install if missing, then create and start a fresh instance;
#                              prints `export` lines and writes them to $RT_HOME/env
#   scripts/rt.sh down         stop the instance of $RT_HOME by its process group, wipe it
#
# Settings (environment):
#   RT_HOME       the instance's state dir (default .casesync/rt/default). Everything the
#                 instance writes lives there: config, SQLite DB, logs, outgoing mail.
#   RT_OWNER_PID  with `up`: a watchdog stops the instance once this process is gone, so a
#                 test binary that holds an instance in a static never leaks a server.
#   RT_KEEP=1     with `down`: keep $RT_HOME (logs) instead of wiping it.
#   RT_NO_INSTALL=1  with `up`: fail instead of installing missing packages (the tests).
#
# The instance: a private RT_SiteConfig (RT never reads /etc/request-tracker5), a fresh
# SQLite DB, queue `GoogleSupport` with the custom fields `SyncWithGoogle` (Select:
# true/false) and `GoogleCaseName` (Freeform), the API user `casesync` (casesync's own
# identity, docs/INVARIANTS.md#own-identity) and the person `agent1` ("Alex Agent"), each with a REST2 auth token,
# and `rt-server` (Starlet) on a free 127.0.0.1 port under setsid.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RT_HOME=${RT_HOME:-$ROOT/.casesync/rt/default}
RT_LIB=/usr/share/request-tracker5/lib
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
RT_SETUP_DB=/usr/sbin/rt-setup-database-5
# w3m: RT warns at start without an HTML-to-text converter; curl: the readiness probe.
PACKAGES=(request-tracker5 rt5-db-sqlite rt5-standalone w3m curl)
QUEUE=GoogleSupport
SYNC_FIELD=SyncWithGoogle
CASE_FIELD=GoogleCaseName
CONNECTOR_USER=casesync
AGENT_USER=agent1
AGENT_NAME="Alex Agent"
# Starlet defaults to 10 workers (~110 MB each); two serve a test run.
WORKERS=${RT_WORKERS:-2}

log() { printf '[rt.sh] %s\n' "$*" >&2; }
die() { printf '[rt.sh] error: %s\n' "$*" >&2; exit 1; }
t0=$(date +%s.%N)
lap() { awk -v a="$t0" -v b="$(date +%s.%N)" -v m="$1" 'BEGIN{printf "[rt.sh] %-26s %5.1fs\n", m, b-a}' >&2; }

installed() {
  [ "$(dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null | grep -c 'ok installed')" = "${#PACKAGES[@]}" ]
}

cmd_install() {
  installed && return 0
  command -v apt-get >/dev/null || die "the RT packages are missing and there is no apt-get to install them"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "installing the RT packages needs root (or sudo)"
    sudo=(sudo -n)
  fi
  # One install at a time: tests may start several instances at once. The lock is held in
  # a subshell so no server started later inherits it.
  (
    flock 9
    installed && exit 0
    apt_install
  ) 9>/tmp/casesync-rt-install.lock
}

apt_install() {
  log "installing ${PACKAGES[*]} (a minute on a fresh machine)"
  # Preseeded so dpkg never asks; the packaged DB this configures is never used.
  "${sudo[@]}" debconf-set-selections <<'SEL'
request-tracker5 request-tracker5/initial-root-password password password
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
SEL
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${PACKAGES[@]}" >/dev/null
  installed || die "apt-get ran but the RT packages are still not installed"
  lap "apt-get install"
}

# Stops the server's process group (Starlet's master takes its workers down) and the
# watchdog, by the PIDs recorded in $RT_HOME.
stop_instance() {
  local pid
  if [ -z "${RT_IN_WATCHDOG:-}" ] && [ -f "$RT_HOME/watchdog.pid" ]; then
    pid=$(cat "$RT_HOME/watchdog.pid")
    kill -TERM "$pid" 2>/dev/null || true
  fi
  [ -f "$RT_HOME/rt.pid" ] || return 0
  pid=$(cat "$RT_HOME/rt.pid")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    case "$(ps -o stat= -p "$pid" 2>/dev/null)" in Z*) break ;; esac
    sleep 0.25
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$RT_HOME/rt.pid"
}

cmd_down() {
  stop_instance
  if [ "${RT_KEEP:-}" != 1 ]; then
    rm -rf "$RT_HOME"
  fi
}

free_port() {
  perl -MIO::Socket::INET -e \
    'my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0, ReuseAddr => 1) or die "no port: $!"; print $s->sockport, "\n";'
}

write_config() {
  local port=$1
  cat >"$RT_HOME/etc/RT_SiteConfig.pm" <<CFG
Set(\$rtname, 'ci.example');
Set(\$Organization, 'ci.example');
Set(\$CorrespondAddress, 'rt\@ci.example');
Set(\$CommentAddress, 'rt-comment\@ci.example');
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $port);
Set(\$WebPath, '');
Set(\$WebBaseURL, 'http://127.0.0.1:$port');
Set(\$DatabaseType, 'SQLite');
Set(\$DatabaseName, '$RT_HOME/var/rt.db');
Set(\$Timezone, 'UTC');
Set(\$LogToSyslog, undef);
Set(\$LogToSTDERR, 'warning');
# RT's own mail (autoreplies, notifications) goes into this instance's mail.mbox, never
# to an MTA.
Set(\$MailCommand, 'sendmailpipe');
Set(\$SendmailPath, '$RT_HOME/sendmail');
Set(\$SendmailArguments, '');
# RT hashes the token on every REST2 request: cost 12 makes each call ~0.2 s. Tests only.
Set(\$BcryptCost, 4);
1;
CFG
}

# Creates what casesync needs, with RT's Perl API (REST2 in 5.0.3 cannot mint tokens or
# grant rights), and prints KEY=VALUE lines.
create_fixtures() {
  perl -I"$RT_LIB" -MRT - "$QUEUE" "$SYNC_FIELD" "$CASE_FIELD" "$CONNECTOR_USER" "$AGENT_USER" "$AGENT_NAME" <<'PERL'
use strict; use warnings;
my ($queue_name, $sync_name, $case_name, $connector, $agent, $agent_name) = @ARGV;
RT::LoadConfig(); RT::Init();
my $sys = RT->SystemUser;
sub ok { my ($what, $id, $msg) = @_; $id or die "$what: $msg\n"; $id }

my $queue = RT::Queue->new($sys);
ok("queue", $queue->Create(Name => $queue_name, Description => 'Cases synced with Google Cloud Support'));

my $sync = RT::CustomField->new($sys);
ok("sync field", $sync->Create(Name => $sync_name, Type => 'Select', MaxValues => 1,
    LookupType => 'RT::Queue-RT::Ticket', Description => 'Synchronize with Google Cloud Support'));
ok("sync value $_", $sync->AddValue(Name => $_, SortOrder => 0)) for qw(true false);
ok("apply sync field", $sync->AddToObject($queue));

my $case = RT::CustomField->new($sys);
ok("case field", $case->Create(Name => $case_name, Type => 'Freeform', MaxValues => 1,
    LookupType => 'RT::Queue-RT::Ticket', Description => 'The Google Cloud support case'));
ok("apply case field", $case->AddToObject($queue));

my %tokens;
for my $u ([$connector, 'casesync', "$connector\@ci.example"], [$agent, $agent_name, "$agent\@ci.example"]) {
    my ($name, $real, $email) = @$u;
    my $user = RT::User->new($sys);
    ok("user $name", $user->Create(Name => $name, RealName => $real, EmailAddress => $email, Privileged => 1));
    my ($id, $msg, $auth) = RT::AuthToken->new($sys)->Create(Owner => $user->Id, Description => 'ci');
    ok("token $name", $id, $msg);
    $tokens{$name} = $auth;
}

# Privileged users (both) may work on the queue, as a support team's agents would.
my $group = RT::Group->new($sys);
$group->LoadSystemInternalGroup('Privileged') or die "no Privileged group\n";
# ShowOutgoingEmail: casesync then sees RT's outgoing-mail records as an admin account would,
# so the tests meet them in listings.
for my $right (qw(SeeQueue ShowTicket CreateTicket ReplyToTicket CommentOnTicket ShowTicketComments
                  ModifyTicket ModifyCustomField SeeCustomField OwnTicket ShowOutgoingEmail)) {
    ok("grant $right", $group->PrincipalObj->GrantRight(Right => $right, Object => $queue));
}
for my $right (qw(SeeCustomField ModifyCustomField)) {
    ok("grant $right on $_", $group->PrincipalObj->GrantRight(Right => $right, Object => $_)) for ($sync, $case);
}

print "RT_QUEUE=$queue_name\n";
print "RT_QUEUE_ID=", $queue->Id, "\n";
print "RT_SYNC_FIELD=$sync_name\n";
print "RT_SYNC_FIELD_ID=", $sync->Id, "\n";
print "RT_CASE_FIELD=$case_name\n";
print "RT_CASE_FIELD_ID=", $case->Id, "\n";
print "RT_USER=$connector\n";
print "RT_TOKEN=$tokens{$connector}\n";
print "RT_AGENT_USER=$agent\n";
print "RT_AGENT_NAME=$agent_name\n";
print "RT_AGENT_TOKEN=$tokens{$agent}\n";
PERL
}

# Starts rt-server on $1 in its own session; returns non-zero if it dies before answering.
start_server() {
  local port=$1 token=$2
  setsid "$RT_SERVER" --host 127.0.0.1 --port "$port" --max-workers "$WORKERS" \
    >"$RT_HOME/rt-server.log" 2>&1 </dev/null &
  echo $! >"$RT_HOME/rt.pid"
  for _ in $(seq 1 480); do
    if curl -fsS -o /dev/null -H "Authorization: token $token" "http://127.0.0.1:$port/REST/2.0/rt" 2>/dev/null; then
      return 0
    fi
    kill -0 "$(cat "$RT_HOME/rt.pid")" 2>/dev/null || return 1
    sleep 0.25
  done
  log "rt-server did not answer within 120 s"
  return 2
}

start_watchdog() {
  local owner=$1 pid
  pid=$(cat "$RT_HOME/rt.pid")
  RT_IN_WATCHDOG=1 RT_HOME="$RT_HOME" setsid bash -c '
    while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
    exec "$3" down' watchdog "$owner" "$pid" "$ROOT/scripts/rt.sh" \
    >/dev/null 2>&1 </dev/null &
  echo $! >"$RT_HOME/watchdog.pid"
}

cmd_up() {
  if [ -z "${RT_NO_INSTALL:-}" ]; then
    cmd_install
  fi
  installed || die "the RT packages (${PACKAGES[*]}) are not installed: run scripts/rt.sh install as root (.ci/run does)"
  stop_instance
  rm -rf "$RT_HOME"
  mkdir -p "$RT_HOME/etc/RT_SiteConfig.d" "$RT_HOME/var"
  RT_HOME=$(cd "$RT_HOME" && pwd)
  printf '#!/bin/sh\ncat >> "%s/mail.mbox"\n' "$RT_HOME" >"$RT_HOME/sendmail"
  chmod 755 "$RT_HOME/sendmail"
  export RT_SITE_CONFIG="$RT_HOME/etc/RT_SiteConfig.pm" RT_SITE_CONFIG_DIR="$RT_HOME/etc/RT_SiteConfig.d"

  local port
  port=$(free_port)
  write_config "$port"
  printf '%s\n' "password" >"$RT_HOME/root-pw"
  chmod 600 "$RT_HOME/root-pw"
  "$RT_SETUP_DB" --action init --root-password-file "$RT_HOME/root-pw" >"$RT_HOME/setup-db.log" 2>&1 \
    || { cat "$RT_HOME/setup-db.log" >&2; die "rt-setup-database failed"; }
  lap "database"
  create_fixtures >"$RT_HOME/fixtures" 2>"$RT_HOME/fixtures.log" \
    || { cat "$RT_HOME/fixtures.log" >&2; die "creating the queue, fields and users failed"; }
  lap "queue, fields, users"
  local token
  token=$(sed -n 's/^RT_TOKEN=//p' "$RT_HOME/fixtures")

  # The port was free a moment ago; if another process took it since, take another.
  local tries=0 rc
  until start_server "$port" "$token"; do
    rc=$?
    tries=$((tries + 1))
    if [ "$rc" != 1 ] || [ "$tries" -ge 3 ] || ! grep -qi 'address already in use' "$RT_HOME/rt-server.log"; then
      cat "$RT_HOME/rt-server.log" >&2
      stop_instance
      die "rt-server did not start"
    fi
    port=$(free_port)
    write_config "$port"
  done
  lap "rt-server answering"

  if [ -n "${RT_OWNER_PID:-}" ]; then
    start_watchdog "$RT_OWNER_PID"
  fi
  {
    sed "s/^\([A-Z_]*\)=\(.*\)$/export \1='\2'/" "$RT_HOME/fixtures"
    echo "export RT_URL='http://127.0.0.1:$port'"
    echo "export RT_PID='$(cat "$RT_HOME/rt.pid")'"
    echo "export RT_HOME='$RT_HOME'"
  } >"$RT_HOME/env"
  cat "$RT_HOME/env"
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  *) die "usage: $0 install|up|down (RT_HOME=$RT_HOME)" ;;
esac
