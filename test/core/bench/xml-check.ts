/**
 * A minimal XML well-formedness check for the generated SVG: balanced tags, quoted attributes, no stray `<` or `&`
 * in text or attribute values. Returns the element names in document order (for counting).
 */
export function checkWellFormedXml(xml: string): string[] {
  const stack: string[] = [];
  const elements: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    checkEntities(text);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) throw new Error(`malformed tag at offset ${lt}: ${xml.slice(lt, lt + 60)}`);
    const [, closing, name, attrs, selfClosing] = m;
    checkEntities(attrs);
    if (closing) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}> at offset ${lt}`);
    } else {
      elements.push(name);
      if (!selfClosing) stack.push(name);
    }
    i = tag.lastIndex;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join("> <")}>`);
  return elements;
}

function checkEntities(s: string): void {
  const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(s);
  if (bad) throw new Error(`bare & in ${JSON.stringify(s.slice(Math.max(0, bad.index - 20), bad.index + 20))}`);
}
