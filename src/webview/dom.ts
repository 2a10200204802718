/** Building the panels' DOM: elements with text content only, never HTML strings, so model output cannot inject markup. */

type Children = Array<Node | string | null | undefined | false>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Record<string, string>, ...children: Children): HTMLElementTagNameMap[K];
export function h(tag: string, props?: Record<string, string>, ...children: Children): HTMLElement;
export function h(tag: string, props: Record<string, string> = {}, ...children: Children): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) element.setAttribute(name, value);
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

export function replaceChildren(parent: Element, ...children: Children): void {
  parent.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}
