// The console's shell: sign-in, the navigation, the language switch and a hash router
// (#/keys, #/keys/ID, #/create, #/access, #/audit), so the server serves one page.

import { useEffect, useState } from "preact/hooks";
import { ApiError, call, openSession, type Session } from "./api.js";
import { ErrorBox, Field } from "./components.js";
import { LANGUAGES, language, setLanguage, t, type Language } from "./i18n.js";
import { AccessPage } from "./pages/access.js";
import { AuditPage } from "./pages/audit.js";
import { CreateKeyPage } from "./pages/create-key.js";
import { KeyPage } from "./pages/key.js";
import { KeysPage } from "./pages/keys.js";

function currentRoute(): string[] {
  return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

function useRoute(): string[] {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return route;
}

export function App() {
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [, setLang] = useState<Language>(language());
  const route = useRoute();
  const changeLanguage = (lang: Language) => {
    setLanguage(lang);
    setLang(lang);
  };
  useEffect(() => setLanguage(language()), []);
  useEffect(() => {
    const main = document.getElementById("main");
    main?.focus();
  }, [route.join("/"), session]);

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        {t("skip")}
      </a>
      <header class="top">
        <span class="brand">{t("appName")}</span>
        {session && (
          <nav aria-label={t("nav")}>
            <ul>
              {(
                [
                  ["keys", "navKeys"],
                  ["access", "navAccess"],
                  ["audit", "navAudit"],
                ] as const
              ).map(([path, label]) => (
                <li key={path}>
                  <a href={`#/${path}`} aria-current={(route[0] ?? "keys") === path || (path === "keys" && route[0] === "create") ? "page" : undefined}>
                    {t(label)}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        <div class="top-right">
          <label for="language" class="visually-hidden">
            {t("language")}
          </label>
          <select id="language" value={language()} onChange={(e) => changeLanguage((e.target as HTMLSelectElement).value as Language)}>
            {Object.entries(LANGUAGES).map(([code, l]) => (
              <option key={code} value={code} lang={code}>
                {l.name}
              </option>
            ))}
          </select>
          {session && (
            <>
              <span class="who" title={t("signedInAs")}>
                {session.secretId}
              </span>
              <button type="button" onClick={() => setSession(undefined)}>
                {t("signOut")}
              </button>
            </>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {session ? <Page session={session} route={route} /> : <SignIn onSignedIn={setSession} />}
      </main>
    </>
  );
}

function Page({ session, route }: { session: Session; route: string[] }) {
  switch (route[0]) {
    case "keys":
      return route[1] ? <KeyPage session={session} keyId={route[1]} /> : <KeysPage session={session} />;
    case "create":
      return <CreateKeyPage session={session} />;
    case "access":
      return <AccessPage session={session} tab={route[1] ?? "users"} />;
    case "audit":
      return <AuditPage session={session} />;
    default:
      return <KeysPage session={session} />;
  }
}

/**
 * Signs in by making one signed call (GetRegions): a wrong SecretId or SecretKey fails the
 * signature; any other answer, a policy's refusal included, proves the credential.
 */
function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    setBusy(true);
    setError(undefined);
    try {
      const session = await openSession(String(data.get("secretId") ?? "").trim(), String(data.get("secretKey") ?? ""), String(data.get("token") ?? "").trim());
      try {
        await call(session, "kms", "GetRegions");
      } catch (err) {
        if (!(err instanceof ApiError) || err.code.startsWith("AuthFailure") || err.code === "NetworkError") throw err;
      }
      form.reset();
      onSignedIn(session);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="signin" aria-labelledby="signin-title">
      <h1 id="signin-title">{t("signInTitle")}</h1>
      <p>{t("signInHelp")}</p>
      <form onSubmit={submit} autocomplete="off">
        <Field id="secretId" label={t("secretId")}>
          <input id="secretId" name="secretId" required autocomplete="off" spellcheck={false} />
        </Field>
        <Field id="secretKey" label={t("secretKey")}>
          <input id="secretKey" name="secretKey" type="password" required autocomplete="off" />
        </Field>
        <Field id="token" label={t("token")}>
          <input id="token" name="token" type="password" autocomplete="off" />
        </Field>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t("signingIn") : t("signIn")}
        </button>
      </form>
      <ErrorBox error={error} />
    </section>
  );
}
