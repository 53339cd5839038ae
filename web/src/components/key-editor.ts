// The state of an editor a key's row opens in place of one of its settings (its credit limit, its
// access): the focus goes to the editor's first field when it opens, and back to the button that
// opened it when it closes (a save, a removal, a cancel), so a keyboard user is never dropped to
// the top of the page; a save PATCHes the key and reloads the list.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, toApiError } from '../api';
import { useRefocusWhen } from '../focus';

export function useKeyEditor<F extends HTMLElement>(keyId: string, onSaved: () => Promise<void>, onError: (e: ApiError) => void) {
  const [editing, setEditing] = useState(false);
  const [busy, setBusy] = useState(false);
  const field = useRef<F>(null);
  const edit = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (editing) field.current?.focus();
  }, [editing]);
  useRefocusWhen(!editing, () => edit.current);

  const save = async (patch: object) => {
    setBusy(true);
    try {
      await api('PATCH', `/keys/${encodeURIComponent(keyId)}`, patch);
      setEditing(false);
      await onSaved();
    } catch (err) {
      onError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return { editing, setEditing, busy, field, edit, save };
}
