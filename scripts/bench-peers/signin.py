#!/usr/bin/env python3
"""The set-up of scripts/bench --peers, the same for Latchkey and the peer: a browser
that signs in to an OpenID Connect provider through its own pages and allows the app,
then the app's code exchanges (authorization code with PKCE, client_secret_basic).

It follows redirects by hand and fills in the main form of any page it lands on (the
one with an "allow" button, else the one with a password field): the email and
password fields, hidden fields as they are, and the "allow" button (so Latchkey's sign-in, registration and consent pages, and the peer's, are
driven by one loop). It stops at the app's redirect URI and takes the code from it.

Prints one JSON object: {"cookies": [per user, the Cookie header its browser sends to
the authorization endpoint], "tokens": [the token endpoint's answers, --flows a user]}.
Standard library only; not timed (the loads are wrk's).
"""

import argparse
import base64
import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser


class FormReader(HTMLParser):
    """The page's forms with method=post: action, fields, and the allow button."""

    def __init__(self):
        super().__init__()
        self.forms, self.inside = [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self.forms.append({"action": a.get("action") or "", "fields": [], "button": None})
            self.inside = True
        elif self.inside and tag == "input" and a.get("name"):
            self.forms[-1]["fields"].append((a["name"], a.get("type", "text"), a.get("value") or ""))
        elif self.inside and tag == "button" and a.get("name") and (a.get("value") or "") == "allow":
            self.forms[-1]["button"] = (a["name"], a["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False

    def main_form(self):
        """The consent form (it has an allow button), else the sign-in or registration
        form (it has a password field); never the page header's sign-out form."""
        for test in (lambda f: f["button"], lambda f: any(k == "password" for _, k, _ in f["fields"])):
            for form in self.forms:
                if test(form):
                    return form
        return None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect
        )

    def fetch(self, url, data=None, headers=None):
        """-> (status, headers, body text); redirects are answers, not followed."""
        req = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode("utf-8", "replace")

    def submit(self, url, page, email, password):
        """Fills in and posts the page's form; -> the answer."""
        reader = FormReader()
        reader.feed(page)
        form = reader.main_form()
        if form is None:
            raise SystemExit(f"no form to fill in at {url}:\n{page[:500]}")
        values = []
        for name, kind, value in form["fields"]:
            if kind == "checkbox":
                continue
            if name == "email":
                value = email
            elif name == "password":
                value = password
            values.append((name, value))
        if form["button"]:
            values.append(form["button"])
        target = urllib.parse.urljoin(url, form["action"])
        body = urllib.parse.urlencode(values).encode()
        return target, self.fetch(target, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def register(self, email, password):
        """Latchkey's registration page: fill it in once; it answers with a redirect
        and the signed-in session's cookie."""
        url = self.base + "/register"
        status, _, page = self.fetch(url)
        if status != 200:
            raise SystemExit(f"GET /register answered {status}")
        _, (status, _, body) = self.submit(url, page, email, password)
        if status not in (302, 303):
            raise SystemExit(f"registering {email} answered {status}:\n{body[:500]}")

    def walk(self, url, email, password, stop_at):
        """Follows redirects and fills in forms until a redirect to stop_at; -> its URL."""
        status, headers, body = self.fetch(url)
        for _ in range(20):
            if status in (301, 302, 303, 307):
                location = urllib.parse.urljoin(url, headers["Location"])
                if location.startswith(stop_at):
                    return location
                url = location
                status, headers, body = self.fetch(url)
            elif status == 200 and "<form" in body:
                url, (status, headers, body) = self.submit(url, body, email, password)
            else:
                raise SystemExit(f"unexpected answer {status} at {url}:\n{body[:500]}")
        raise SystemExit(f"too many steps from {url}")

    def cookie_header(self, path):
        req = urllib.request.Request(self.base + path)
        self.jar.add_cookie_header(req)
        return req.get_header("Cookie") or ""


def one_user(a, email):
    """Signs `email` in (registering it first with --register), allows the app, and
    runs --flows code exchanges; -> (the browser's Cookie header, the token answers)."""
    b = Browser(a.base)
    if a.register:
        b.register(email, a.password)
    basic = base64.b64encode(f"{a.client_id}:{a.client_secret}".encode()).decode()
    tokens = []
    for i in range(a.flows):
        query = {
            "response_type": "code", "client_id": a.client_id, "redirect_uri": a.redirect_uri,
            "scope": a.scope, "state": f"s{i}", "nonce": f"n{i}",
            "code_challenge": a.challenge, "code_challenge_method": "S256",
        }
        if a.prompt:
            query["prompt"] = a.prompt
        back = b.walk(a.base + "/oauth2/authorize?" + urllib.parse.urlencode(query),
                      email, a.password, stop_at=a.redirect_uri)
        code = urllib.parse.parse_qs(urllib.parse.urlparse(back).query).get("code")
        if not code:
            raise SystemExit(f"no code in {back}")
        body = urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": code[0],
            "redirect_uri": a.redirect_uri, "code_verifier": a.verifier,
        }).encode()
        status, _, answer = b.fetch(a.base + "/oauth2/token", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}",
        })
        if status != 200:
            raise SystemExit(f"the code exchange answered {status}: {answer[:500]}")
        tokens.append(json.loads(answer))
    return b.cookie_header("/oauth2/authorize"), tokens


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--redirect-uri", required=True)
    p.add_argument("--email", required=True, help="with --accounts, {} is the account's number")
    p.add_argument("--password", required=True)
    p.add_argument("--accounts", type=int, default=1, help="that many users, each its own browser")
    p.add_argument("--register", action="store_true", help="make the account first (/register)")
    p.add_argument("--scope", default="openid email")
    p.add_argument("--prompt", default="")
    p.add_argument("--challenge", required=True)
    p.add_argument("--verifier", required=True)
    p.add_argument("--flows", type=int, default=1, help="code exchanges per user")
    a = p.parse_args()

    emails = [a.email.format(i) for i in range(a.accounts)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        users = list(pool.map(lambda e: one_user(a, e), emails))
    json.dump({"cookies": [c for c, _ in users], "tokens": [t for _, ts in users for t in ts]},
              sys.stdout)


if __name__ == "__main__":
    main()
