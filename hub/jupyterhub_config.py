# The course's JupyterHub: `make hub` (as root, or with sudo) installs what it needs and starts it with this file.
#
# Accounts are the machine's own (PAM): members of the Unix group `instructors` get nbgrader's formgrader and
# Create Assignment; members of `students` get JupyterLab with nbgrader's Assignments tab and nothing of the
# instructor's. Each user's JupyterLab runs as that user (LocalProcessSpawner), from the shared course environment
# that hub/install.sh built under the prefix. Settings come from the environment (the Makefile sets them):
#   ATTENTION_STEPS_HUB_PREFIX    where hub/install.sh put the environment, the proxy and the per-group configuration
#   ATTENTION_STEPS_HUB_URL       where the hub listens (default http://127.0.0.1:8000; put TLS in front of it)
#   ATTENTION_STEPS_EXCHANGE      nbgrader's exchange folder (default /srv/nbgrader/exchange)
#   ATTENTION_STEPS_HUB_STATE     the hub's database and cookie secret (default: PREFIX/state)
#   ATTENTION_STEPS_HUB_GROUPS    the Unix groups that may log in (default "instructors students")
import grp
import os
import pwd
from pathlib import Path

prefix = Path(os.environ.get("ATTENTION_STEPS_HUB_PREFIX", "/opt/attention-steps"))
state = Path(os.environ.get("ATTENTION_STEPS_HUB_STATE", prefix / "state"))
exchange = os.environ.get("ATTENTION_STEPS_EXCHANGE", "/srv/nbgrader/exchange")
state.mkdir(mode=0o700, parents=True, exist_ok=True)

c = get_config()  # noqa: F821

c.JupyterHub.bind_url = os.environ.get("ATTENTION_STEPS_HUB_URL", "http://127.0.0.1:8000")
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.command = [str(prefix / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
c.JupyterHub.cleanup_servers = True

# Who may log in: the machine's accounts in the course's groups. No hub admins: the instructor needs none.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_groups = set(os.environ.get("ATTENTION_STEPS_HUB_GROUPS", "instructors students").split())
c.Authenticator.admin_users = set()

# Each user's JupyterLab, as that user, from the shared course environment.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(prefix / "venv" / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 180  # a 2-core machine starting several JupyterLabs at once
c.Spawner.http_timeout = 180
c.Spawner.mem_limit = None


def _groups(username: str) -> set[str]:
    user = pwd.getpwnam(username)
    return {grp.getgrgid(gid).gr_name for gid in os.getgrouplist(username, user.pw_gid)}


def role(username: str) -> str:
    """'instructor' for members of the instructors group, else 'student'."""
    return "instructor" if "instructors" in _groups(username) else "student"


def _per_role(spawner) -> None:
    """What this user's JupyterLab sees: the per-role Jupyter configuration (extensions, nbgrader's settings). The
    user's home is made theirs alone first: a student's notebooks must not be readable by the others."""
    home = Path(pwd.getpwnam(spawner.user.name).pw_dir)
    if home.is_dir() and home.stat().st_mode & 0o077:
        home.chmod(0o700)
    who = role(spawner.user.name)
    spawner.environment.update({
        "JUPYTER_CONFIG_PATH": str(prefix / "config" / who),
        "ATTENTION_STEPS_EXCHANGE": exchange,
        "ATTENTION_STEPS_ROLE": who,
        "PATH": f"{prefix / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),  # many learners share the cores
    })


c.Spawner.pre_spawn_hook = _per_role
