/** The webview side of a panel: the VS Code API, which a page may acquire only once, typed by what it sends and keeps. */

export interface VsCodeApi<State, FromView> {
  postMessage(message: FromView): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<State, FromView>(): VsCodeApi<State, FromView>;

export function connect<State, FromView, ToView>(onMessage: (message: ToView) => void): VsCodeApi<State, FromView> {
  const api = acquireVsCodeApi<State, FromView>();
  window.addEventListener('message', (event: MessageEvent<ToView>) => onMessage(event.data));
  return api;
}
