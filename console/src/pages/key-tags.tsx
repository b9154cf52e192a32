// A key's tags on its page: the table (ListResourceTags), and, where the key's state allows it,
// adding or replacing a tag (TagResource) and removing one (UntagResource), each confirmed and
// each showing the API's refusal verbatim.

import { useState } from "preact/hooks";
import type { KeyState } from "../../../src/keys/key.js";
import { ruleFor } from "../../../src/keys/lifecycle.js";
import { call, type Json, type Session } from "../api.js";
import { ConfirmDialog, DataTable, ErrorBox, Field, Loading, useCall, useLoad, type Column } from "../components.js";
import { t } from "../i18n.js";

interface Tag {
  TagKey: string;
  TagValue: string;
}

/** The change waiting for confirmation: a tag to set, or a tag key to remove. */
type Change = { set: Tag } | { remove: string };

/** TagResource's limits (docs/api.md). */
const MAX_TAG_KEY = 127;
const MAX_TAG_VALUE = 255;

export function KeyTags({ session, keyId, keyName, state }: { session: Session; keyId: string; keyName: string; state: KeyState }) {
  const tags = useLoad(() => call<{ Tags: Tag[] }>(session, "kms", "ListResourceTags", { KeyId: keyId }).then((r) => r.Tags), [session, keyId]);
  const [tagKey, setTagKey] = useState("");
  const [tagValue, setTagValue] = useState("");
  const [pending, setPending] = useState<Change | undefined>(undefined);
  const [done, setDone] = useState<string | undefined>(undefined);
  const op = useCall<Json>();
  const editable = ruleFor("TagResource", state) === "allow";

  const ask = (change: Change) => {
    op.reset();
    setDone(undefined);
    setPending(change);
  };
  const confirm = async () => {
    if (!pending) return;
    const title = describe(pending);
    const ok = await op.run(() =>
      "set" in pending
        ? call(session, "kms", "TagResource", { KeyId: keyId, Tags: [pending.set] })
        : call(session, "kms", "UntagResource", { KeyId: keyId, TagKeys: [pending.remove] }),
    );
    setPending(undefined);
    if (ok === undefined) return;
    setDone(`${title}: ${t("done")}`);
    if ("set" in pending) {
      setTagKey("");
      setTagValue("");
    }
    tags.reload();
  };

  const columns: Column<Tag>[] = [
    { label: "tagKey", cell: (tag) => tag.TagKey },
    { label: "tagValue", cell: (tag) => tag.TagValue || "—" },
  ];
  if (editable) {
    columns.push({
      label: "actions",
      cell: (tag) => (
        <button type="button" aria-label={t("tagRemoveNamed", { tag: tag.TagKey })} onClick={() => ask({ remove: tag.TagKey })}>
          {t("tagRemove")}
        </button>
      ),
    });
  }

  return (
    <section aria-labelledby="tags-title">
      <h2 id="tags-title">{t("tags")}</h2>
      <ErrorBox error={tags.error} />
      {tags.loading && !tags.data ? <Loading /> : null}
      {tags.data?.length === 0 ? <p class="muted">{t("tagsNone")}</p> : null}
      {tags.data && tags.data.length > 0 ? <DataTable label={t("tags")} columns={columns} rows={tags.data} rowKey={(tag) => tag.TagKey} /> : null}
      {editable ? (
        <form
          class="form inline"
          onSubmit={(e) => {
            e.preventDefault();
            ask({ set: { TagKey: tagKey, TagValue: tagValue } });
          }}
        >
          <Field id="tag-key" label={t("tagKey")}>
            <input id="tag-key" type="text" maxLength={MAX_TAG_KEY} value={tagKey} onInput={(e) => setTagKey((e.target as HTMLInputElement).value)} required />
          </Field>
          <Field id="tag-value" label={t("tagValue")}>
            <input id="tag-value" type="text" maxLength={MAX_TAG_VALUE} value={tagValue} onInput={(e) => setTagValue((e.target as HTMLInputElement).value)} />
          </Field>
          <button type="submit">{t("tagSet")}</button>
        </form>
      ) : null}
      <ErrorBox error={op.error} />
      {done ? (
        <p role="status" class="ok">
          {done}
        </p>
      ) : null}
      {pending ? <ConfirmDialog title={t("confirmAction", { action: describe(pending), key: keyName })} busy={op.busy} onConfirm={confirm} onCancel={() => setPending(undefined)} /> : null}
    </section>
  );
}

function describe(change: Change): string {
  return "set" in change ? t("tagSetNamed", { tag: `${change.set.TagKey}=${change.set.TagValue}` }) : t("tagRemoveNamed", { tag: change.remove });
}
