# shellcheck shell=sh
# The launcher: runs a job's command inside an image that has no Hodei (and maybe no shell).
#
# The job's container runs `/hodei/busybox sh /hodei/launch.sh`: Debian's static busybox
# and this script, both copied into a shared emptyDir by the pod's init container. The
# agent (another container of the pod) talks to it through fifos in the same directory:
#   ctl     agent -> launcher: "go" once the file `job` is in place (EOF: no job, leave)
#   status  launcher -> agent: "ready PID", then "started PID" or "notfound PATH" or
#           "noexec PATH UID" or "noworkdir", then "exit CODE OOM"
#   stdin   the client's input (hodei run -i), when the job asks for it
#   stdout, stderr  the command's output, kept apart
# `job` (written by the agent) defines hodei_run, which runs "$@" through busybox env with
# the job's variables, and sets the positional parameters to the job's argv; hodei_path is
# set when the job's env gives PATH, hodei_workdir for --workdir, hodei_stdin=1 for -i.
#
# Busybox prefers its own applets over the image's programs for a bare name, so the
# command is looked up in PATH here, as execvp does, and run by its full path: the image's
# `ls` runs, not busybox's, and a name the image lacks is "not found", not an applet.
d=${0%/*}
bb=$d/busybox

exec 3>"$d/status" 4<"$d/ctl"
echo "ready $$" >&3
IFS= read -r go <&4 || exit 0
[ "$go" = go ] || exit 0
exec 4<&-
# shellcheck source=/dev/null
. "$d/job"
if [ -n "${hodei_workdir-}" ]; then
    cd "$hodei_workdir" 2>/dev/null || { echo noworkdir >&3; exit 125; }
fi

cmd=$1
path=
denied=
case $cmd in
*/*)
    if [ -f "$cmd" ] && [ -x "$cmd" ]; then path=$cmd; elif [ -e "$cmd" ]; then denied=$cmd; fi
    ;;
*)
    old_ifs=$IFS
    IFS=:
    for dir in ${hodei_path-$PATH}; do
        [ -n "$dir" ] || dir=.
        if [ -f "$dir/$cmd" ] && [ -x "$dir/$cmd" ]; then
            path=$dir/$cmd
            break
        fi
        [ -n "$denied" ] || { [ -e "$dir/$cmd" ] && denied=$dir/$cmd; }
    done
    IFS=$old_ifs
    ;;
esac
if [ -z "$path" ]; then
    if [ -n "$denied" ]; then
        echo "noexec $denied $("$bb" id -u)" >&3
        exit 126
    fi
    echo "notfound $cmd" >&3
    exit 127
fi
shift

# The kernel counts OOM kills per cgroup: the job's container's own count tells an
# out-of-memory SIGKILL from any other (cgroup v2 memory.events, v1 memory.oom_control).
oom_kills() {
    for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do
        if [ -r "$f" ]; then
            while read -r key value; do
                [ "$key" = oom_kill ] && { echo "$value"; return; }
            done <"$f"
        fi
    done
    echo 0
}
before=$(oom_kills)

# The command's output fifos, held by this shell until the command ended (the agent reads
# them to end-of-file); this shell's own words (e.g. "Terminated") stay in the container log.
# Its stdin, opened here too, so that the agent may open its end once told "started".
input=/dev/null
[ "${hodei_stdin-}" = 1 ] && input=$d/stdin
exec 5>"$d/stdout" 6>"$d/stderr" 7<"$input"
echo "started $$" >&3
# Stay alive to report: a signal for the container reaches this shell, which passes the
# command's end on; the agent signals the command's processes itself.
trap : TERM INT HUP
# In a subshell, so that the redirections are the command's alone: what this shell itself
# prints about the command's end goes to the container log, not into the job's stderr.
(hodei_run "$path" "$@") <&7 >&5 2>&6 3>&- 5>&- 6>&- 7<&-
code=$?
exec 5>&- 6>&- 7<&-
oom=0
[ "$(oom_kills)" = "$before" ] || oom=1
echo "exit $code $oom" >&3
exit "$code"
