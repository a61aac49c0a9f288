// Example texts offered on Explore and Compare.
import { el } from "./ui.js";

// Example texts offered on Explore and Compare: the kinds of text the shipped model was trained
// on (models/blt-studio/README.md: English prose, code in five languages, 32 languages in 12 scripts).
export const EXAMPLES = {
  "English prose": "The river was quiet that morning. A heron stood in the shallows, waiting for something only it could see.",
  Python: "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
  Go: "func main() {\n\tfor i := 0; i < 3; i++ {\n\t\tfmt.Println(\"hello\", i)\n\t}\n}\n",
  German: "Am nächsten Morgen regnete es, und die Straßen der kleinen Stadt waren fast leer.",
  Spanish: "La biblioteca abre a las nueve, pero los lectores más fieles llegan mucho antes.",
  Russian: "Вечером мы долго сидели у окна и говорили о книгах, которые читали в детстве.",
  Chinese: "今天天气很好，我们一起去公园散步吧。",
  Japanese: "昨日は友達と一緒に図書館で勉強しました。",
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
