/**
 * The numeric VASP version ("5.4.4", "6.3.0") from the first bytes of an OUTCAR (`vasp.5.4.4.18Apr17...`) or a
 * vasprun.xml (`<i name="version" type="string">6.3.0 </i>`). Both files spell it differently; labels use one form.
 */
export function vaspVersionFromHead(head: string): string | null {
  const m = /^\s*vasp\.(\d+\.\d+\.\d+)/.exec(head) ?? /<i\s+name="version"[^>]*>\s*(\d+\.\d+(?:\.\d+)?)/.exec(head);
  return m ? m[1] : null;
}
