// Example texts offered on Explore and Compare.
import { el } from "./ui.js";

export const EXAMPLES = {
  "English prose": "The river was quiet that morning. A heron stood in the shallows, waiting for something only it could see.",
  Code: "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
  Chinese: "今天天气很好，我们一起去公园散步吧。",
  Arabic: "اللغة العربية من أقدم اللغات السامية وأكثرها انتشارا.",
  Emoji: "Pizza night 🍕🍕 then rockets 🚀 and a late coder 👩‍💻 under the moon 🌙✨",
  "Typo'd sentence": "Teh qiuck borwn fox jmups ovre teh lazzy dgo, agian and agian.",
};

/** Fill `container` with one button per example; clicking one calls onPick(text). */
export function exampleButtons(container, onPick) {
  container.replaceChildren(...Object.entries(EXAMPLES).map(([label, text]) => {
    const button = el("button", { type: "button", className: "example", textContent: label });
    button.addEventListener("click", () => onPick(text));
    return button;
  }));
}
