// The header badge: which model the server has loaded, and "random weights" when untrained.
import { models } from "./api.js";

const badge = document.getElementById("model-badge");

models().then(({ model }) => {
  const parts = [model.name.split("/").pop()];
  if (model.error) parts.push("unavailable");
  else if (model.trained === false) parts.push("random weights");
  if (model.device) parts.push(model.device);
  badge.textContent = parts.join(" · ");
  badge.title = model.error ? `model error: ${model.error}` : `${model.name}: ${model.params ?? "?"} parameters`;
  badge.classList.toggle("warn", !model.trained || Boolean(model.error));
}).catch((err) => {
  badge.textContent = "model unavailable";
  badge.title = err.message;
  badge.classList.add("warn");
});
