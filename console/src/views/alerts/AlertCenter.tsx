import { NavLink, Route, Routes } from "react-router-dom";
import { Alerts } from "./Alerts";
import { Deliveries } from "./Deliveries";
import { Rules } from "./Rules";
import { Silences } from "./Silences";

export function AlertCenter() {
  return (
    <section aria-labelledby="alerts-title">
      <h1 id="alerts-title">Alert center</h1>
      <nav aria-label="Alert center" className="subnav">
        <NavLink end to="/alerts">
          Alerts
        </NavLink>
        <NavLink to="/alerts/silences">Silences</NavLink>
        <NavLink to="/alerts/deliveries">Delivery log</NavLink>
        <NavLink to="/alerts/rules">Rules</NavLink>
      </nav>
      <Routes>
        <Route index element={<Alerts />} />
        <Route path="silences" element={<Silences />} />
        <Route path="deliveries" element={<Deliveries />} />
        <Route path="rules" element={<Rules />} />
      </Routes>
    </section>
  );
}
