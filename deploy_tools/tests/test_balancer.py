"""The balancer's nginx site and upstream list, app hosts behind it, one key for all of them."""

import contextlib
import io
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from deploy_tools import balancer, fabfile
from deploy_tools.errors import DeployError
from deploy_tools.sitepaths import SitePaths
from deploy_tools.tests.local_host import LocalHost

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE = "superlists.example.com"


def app_host(home, user, address):
    return fabfile.Site(
        paths=SitePaths(SITE, home),
        user=user,
        init="supervisor",
        listen_address=address,
        site_url=f"https://{SITE}",
        behind="127.0.1.5",
        host=address,
    )


class AppHostTest(unittest.TestCase):
    def test_behind_a_tls_balancer_the_site_runs_as_https(self):
        site = app_host("/home/web1", "web1", "127.0.1.3")
        self.assertTrue(site.https)
        values = fabfile.dotenv_values_for(site, {}, {"EMAIL_HOST": "smtp.example.com"})
        self.assertEqual(values["DJANGO_SECURE_HTTPS"], "1")
        self.assertEqual(values["SUPERLISTS_HOST_LABEL"], "127.0.1.3")
        self.assertEqual(values["DJANGO_ALLOWED_HOSTS"], f"{SITE},127.0.1.3")
        plain = fabfile.Site(paths=SitePaths(SITE, "/home/x"), user="x", init="supervisor")
        self.assertFalse(plain.https)
        self.assertNotIn("SUPERLISTS_HOST_LABEL", fabfile.dotenv_values_for(plain, {}, {}))

    def test_the_balancers_address_alone_may_say_the_visit_was_https(self):
        text = fabfile.render_nginx_site(app_host("/home/web1", "web1", "127.0.1.3"))
        self.assertIn("set_real_ip_from 127.0.1.5;", text)
        self.assertRegex(text, r"127\.0\.1\.5 \$http_x_forwarded_proto;")
        self.assertRegex(text, r"default \$scheme;")
        plain = fabfile.Site(paths=SitePaths(SITE, "/home/x"), user="x", init="supervisor")
        self.assertIn(
            "proxy_set_header X-Forwarded-Proto $scheme;", fabfile.render_nginx_site(plain)
        )

    @unittest.skipUnless(Path(NGINX).exists(), "no nginx")
    def test_one_nginx_accepts_the_balancer_and_two_app_hosts_of_the_same_site(self):
        # The loopback rehearsal's shape: every "machine" is a user of one host, one nginx.
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", f"/CN={SITE}", "-keyout", f"{tmp}/key.pem", "-out", f"{tmp}/cert.pem"],
                check=True, capture_output=True,
            )  # fmt: skip
            lb = SitePaths(SITE, f"{tmp}/lb")
            machines = (("web1", "127.0.1.3"), ("web2", "127.0.1.4"))
            sites = [app_host(f"{tmp}/{user}", user, address) for user, address in machines]
            certificate = (f"{tmp}/cert.pem", f"{tmp}/key.pem")
            confs = {
                lb.nginx_conf: balancer.render_site(
                    lb, [SITE], "127.0.1.5", *certificate, fabfile.render
                )
            }
            confs.update({site.paths.nginx_conf: fabfile.render_nginx_site(site) for site in sites})
            for path, text in confs.items():
                Path(str(path)).parent.mkdir(parents=True, exist_ok=True)
                Path(str(path)).write_text(text)
                Path(str(path.parent / "logs")).mkdir(exist_ok=True)
            hosts = ["127.0.1.3:80", "127.0.1.4:80"]
            Path(str(balancer.upstream_file(lb))).write_text(balancer.upstream_text(hosts))
            conf = Path(tmp) / "nginx.conf"
            includes = "".join(f"include {path};\n" for path in confs)
            conf.write_text(
                f"pid {tmp}/nginx.pid; error_log {tmp}/error.log; events {{}}\n"
                f"http {{\n{includes}}}\n"
            )
            result = subprocess.run(
                [NGINX, "-t", "-q", "-c", str(conf), "-p", tmp, "-e", f"{tmp}/error.log"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotEqual(sites[0].service, sites[1].service)


class UpstreamTest(unittest.TestCase):
    def test_app_hosts_are_read_with_their_port(self):
        self.assertEqual(
            balancer.parse_app_hosts(" 127.0.1.3, web2.internal:8080,"),
            ["127.0.1.3:80", "web2.internal:8080"],
        )
        for bad in ("", "127.0.1.3:http", "user@127.0.1.3"):
            with self.subTest(bad=bad), self.assertRaisesRegex(DeployError, "--app-hosts"):
                balancer.parse_app_hosts(bad)

    def test_the_upstream_list_says_which_hosts_are_out(self):
        text = balancer.upstream_text(["a:80", "b:80"], down={"b:80"})
        self.assertEqual(balancer.parse_upstream(text), (["a:80", "b:80"], {"b:80"}))
        self.assertIn("max_fails=1", text)

    def take_out(self, conn, paths, host, down=True):
        class Reloaded:  # the balancer host's nginx is not this test's: it accepts each reload
            reloads = 0

            def reload_nginx(self, conn):
                Reloaded.reloads += 1
                return ""

        with contextlib.redirect_stdout(io.StringIO()):
            changed = balancer.set_down(conn, paths, Reloaded(), host, down)
        return changed, Reloaded.reloads

    def test_taking_hosts_out_and_back_rewrites_the_list_and_reloads(self):
        with tempfile.TemporaryDirectory() as tmp:
            paths = SitePaths(SITE, tmp)
            Path(str(paths.root)).mkdir(parents=True)
            upstream = Path(str(balancer.upstream_file(paths)))
            upstream.write_text(balancer.upstream_text(["a:80", "b:80"]))
            conn = LocalHost()
            self.assertEqual(self.take_out(conn, paths, "a:80"), (True, 1))
            self.assertEqual(balancer.parse_upstream(upstream.read_text())[1], {"a:80"})
            self.assertEqual(self.take_out(conn, paths, "a:80"), (False, 0))
            with self.assertRaisesRegex(DeployError, "no app host"):
                self.take_out(conn, paths, "b:80")
            with self.assertRaisesRegex(DeployError, "does not list c:80"):
                self.take_out(conn, paths, "c:80")
            self.assertEqual(self.take_out(conn, paths, "a:80", down=False), (True, 1))
            self.assertEqual(balancer.parse_upstream(upstream.read_text())[1], set())


class SharedSecretTest(unittest.TestCase):
    def setUp(self):
        fabfile._FIRST_HOST.clear()
        self.addCleanup(fabfile._FIRST_HOST.clear)

    def values(self, site, existing, rotate=False):
        values = fabfile.dotenv_values_for(site, existing, {}, rotate)
        with contextlib.redirect_stdout(io.StringIO()) as said:
            return fabfile._same_secrets_on_every_host(site, values), said.getvalue()

    def test_every_app_host_of_one_run_gets_the_first_ones_key(self):
        web1 = app_host("/home/web1", "web1", "127.0.1.3")
        web2 = app_host("/home/web2", "web2", "127.0.1.4")
        first, _ = self.values(web1, {"DJANGO_SECRET_KEY": "k1"})
        second, said = self.values(web2, {"DJANGO_SECRET_KEY": "k2-its-own"})
        self.assertEqual((first["DJANGO_SECRET_KEY"], second["DJANGO_SECRET_KEY"]), ("k1", "k1"))
        self.assertIn("127.0.1.4 gets 127.0.1.3's DJANGO_SECRET_KEY", said)

    def test_a_rotation_happens_once_for_the_whole_site(self):
        web1 = app_host("/home/web1", "web1", "127.0.1.3")
        web2 = app_host("/home/web2", "web2", "127.0.1.4")
        first, _ = self.values(web1, {"DJANGO_SECRET_KEY": "old"}, rotate=True)
        second, _ = self.values(web2, {"DJANGO_SECRET_KEY": "old"}, rotate=True)
        self.assertEqual(first["DJANGO_SECRET_KEY_FALLBACKS"], "old")
        self.assertEqual(
            [second[name] for name in fabfile.SHARED_SECRETS],
            [first[name] for name in fabfile.SHARED_SECRETS],
        )

    def test_status_names_an_app_host_with_a_key_of_its_own(self):
        with tempfile.TemporaryDirectory() as tmp:
            for user, key in (("web1", "k1"), ("web2", "k2")):
                site = app_host(f"{tmp}/{user}", user, f"127.0.1.{3 if user == 'web1' else 4}")
                Path(str(site.paths.root)).mkdir(parents=True)
                Path(str(site.paths.env)).write_text(f"DJANGO_SECRET_KEY={key}\n")
                with contextlib.redirect_stdout(io.StringIO()):
                    if user == "web1":
                        fabfile._same_key_as_first_host(LocalHost(), site)
                        continue
                    with self.assertRaisesRegex(DeployError, "another DJANGO_SECRET_KEY than"):
                        fabfile._same_key_as_first_host(LocalHost(), site)


if __name__ == "__main__":
    unittest.main()
